"""Models described for people: parameter counts per part under given settings."""

from __future__ import annotations

import inspect

from torch import nn

from csunet.models.registry import count_parameters, list_models, model_entry


def create_from_settings(name: str, **settings) -> nn.Module:
    """Build ``name`` passing only the settings its builder accepts (so one set of flags serves every model)."""
    builder = model_entry(name).builder
    accepted = inspect.signature(builder).parameters
    return builder(**{k: v for k, v in settings.items() if k in accepted})


def describe_models(**settings) -> list[dict]:
    rows = []
    for name in list_models():
        entry = model_entry(name)
        model = create_from_settings(name, **settings)
        parts = {part: count_parameters(getattr(model, part)) for part in ("cnn", "swin", "decoder")
                 if isinstance(getattr(model, part, None), nn.Module)}  # fmt: skip
        accepted = inspect.signature(entry.builder).parameters
        rows.append(
            {
                "name": name,
                "description": entry.description,
                "settings": {k: v for k, v in settings.items() if k in accepted},
                "parameters": count_parameters(model),
                "parameters_by_part": parts,
                "presets": entry.presets,
            }
        )
    return rows

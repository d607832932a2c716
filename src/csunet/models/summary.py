"""Models described for people: parameter counts per part under given settings."""

from __future__ import annotations

import inspect

from torch import nn

from csunet.models.registry import count_parameters, list_models, model_entry


def accepted_settings(name: str, settings: dict) -> dict:
    """The subset of ``settings`` that model ``name``'s builder takes (one set of flags serves every model)."""
    accepted = inspect.signature(model_entry(name).builder).parameters
    return {k: v for k, v in settings.items() if k in accepted}


def resolved_settings(name: str, settings: dict) -> dict:
    """Every setting of ``name`` (builder defaults filled in, ``num_classes`` left out): what a checkpoint
    records so that it rebuilds the same model even if a default changes later."""
    defaults = {
        k: p.default
        for k, p in inspect.signature(model_entry(name).builder).parameters.items()
        if k != "num_classes" and p.default is not inspect.Parameter.empty
    }
    return defaults | accepted_settings(name, settings)


def create_from_settings(name: str, **settings) -> nn.Module:
    """Build ``name`` passing only the settings its builder accepts."""
    return model_entry(name).builder(**accepted_settings(name, settings))


def model_parts(model: nn.Module) -> dict[str, nn.Module]:
    """The CNN encoder, Swin encoder and the rest, for parameter breakdowns."""
    parts = {}
    for part, attributes in (("cnn", ("cnn", "encoder")), ("swin", ("swin",))):
        module = next(
            (getattr(model, a) for a in attributes if isinstance(getattr(model, a, None), nn.Module)), None
        )
        if module is not None:
            parts[part] = module
    return parts


def describe_models(**settings) -> list[dict]:
    rows = []
    for name in list_models():
        entry = model_entry(name)
        model = create_from_settings(name, **settings)
        parts = {part: count_parameters(module) for part, module in model_parts(model).items()}
        parts["decoder"] = count_parameters(model) - sum(parts.values())
        rows.append(
            {
                "name": name,
                "description": entry.description,
                "settings": accepted_settings(name, settings),
                "parameters": count_parameters(model),
                "parameters_by_part": parts,
                "presets": entry.presets,
            }
        )
    return rows

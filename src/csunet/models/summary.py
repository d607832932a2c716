"""Models described for people: parameter counts per part under given settings."""

from __future__ import annotations

from torch import nn

from csunet.models.registry import count_parameters, create_model, list_models, model_entry, model_part


def accepted_settings(name: str, settings: dict) -> dict:
    """The subset of ``settings`` that model ``name`` takes: one set of flags describes every model here (building
    a model for use goes through the strict :func:`csunet.models.registry.create_model`)."""
    accepted = set(model_entry(name).settings()) | {"num_classes"}
    return {k: v for k, v in settings.items() if k in accepted}


def model_parts(model: nn.Module) -> dict[str, nn.Module]:
    """The CNN encoder and Swin encoder the model declares, for parameter breakdowns."""
    parts = {part: model_part(model, part) for part in ("cnn", "swin")}
    return {part: module for part, module in parts.items() if module is not None}


def describe_models(**settings) -> list[dict]:
    rows = []
    for name in list_models():
        entry = model_entry(name)
        model = create_model(name, **accepted_settings(name, settings))
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

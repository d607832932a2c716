"""A small model registry: architectures register a builder by name; everything else creates models by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    description: str
    presets: dict[str, dict]


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, description: str = "", presets: dict[str, dict] | None = None):
    """Decorator: ``@register_model("cs_unet")`` on a function that returns an ``nn.Module`` from keyword settings."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        doc = description or (builder.__doc__ or "").strip().splitlines()[0]
        _REGISTRY[name] = ModelEntry(name, builder, doc, presets or {})
        return builder

    return wrap


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _REGISTRY[name]


def create_model(name: str, **config) -> nn.Module:
    """Build a registered architecture, e.g. ``create_model("cs_unet", encoder="resnet50", depths="intermediate")``."""
    return model_entry(name).builder(**config)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

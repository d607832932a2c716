"""The model registry: architectures register a builder by name; everything else creates models by name through
:func:`create_model`, which is strict about setting names and applies named presets."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from csunet.errors import SettingsError


@dataclass(frozen=True)
class Capabilities:
    """What a model is made of and takes, declared where it is registered so that no caller guesses from attribute
    or setting names. :func:`create_model` attaches it to each model it builds (as timm attaches its
    ``pretrained_cfg``); a model built elsewhere (pretraining's classifier) declares it as a class attribute."""

    cnn: str | None = None
    """Submodule that takes a pretrained CNN encoder (an smp encoder state dict), or None; a model with one
    names its smp encoder in ``encoder_name``."""
    swin: str | None = None
    """Submodule that takes a pretrained Swin-T encoder, or None."""
    decoder_mirrors_swin: bool = False
    """Pretrained Swin weights also initialise the ``decoder``'s Swin stages (Swin-Unet's scheme)."""
    size_multiple: int = 32
    """Input sides must be multiples of this (five 2x downsamplings, or a 4x patch and three merges)."""


def capabilities_of(model: nn.Module) -> Capabilities:
    found = getattr(model, "capabilities", None)
    if not isinstance(found, Capabilities):
        raise SettingsError(f"{type(model).__name__} declares no capabilities; build it with create_model")
    return found


def model_part(model: nn.Module, part: str) -> nn.Module | None:
    """The model's ``cnn`` or ``swin`` part as its capabilities name it; None when it has none."""
    name = getattr(capabilities_of(model), part)
    return None if name is None else model.get_submodule(name)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    description: str
    presets: dict[str, dict]
    capabilities: Capabilities

    @property
    def fixed_input_size(self) -> bool:
        """Whether the model is built for one input size (``img_size``: Swin token grids and relative-position
        tables are sized at build time), so a checkpoint's tile size is part of the model; CNNs take any size."""
        return "img_size" in self.settings()

    def settings(self) -> dict:
        """Every setting the builder takes, with its default (``num_classes`` left out)."""
        return {
            key: parameter.default
            for key, parameter in inspect.signature(self.builder).parameters.items()
            if key != "num_classes" and parameter.default is not inspect.Parameter.empty
        }


_REGISTRY: dict[str, ModelEntry] = {}

SETTING_HELP = {
    "encoder": "CNN encoder (any segmentation_models_pytorch name)",
    "depths": "Swin depths: original [2,2,6,2], intermediate [2,2,2,2] or shallow [1,1,1,1]",
    "img_size": "Input (tile) size the Swin side is built for",
    "window_size": "Swin window size (8 for 512-pixel tiles, 7 for 224)",
    "embed_dim": "Swin width (96 = Swin-T; smaller for quick models)",
    "variant": "HiFormer variant: s, b or l",
    "levels": "TransDeepLab pyramid levels (1-4)",
    "drop_path_rate": "Stochastic depth of the Swin blocks",
}
"""What each model setting means, in one place: the command line's model options and `csunet models` say it.
A model registered with a setting not described here is refused."""


def setting_types() -> dict[str, type]:
    """Every setting any registered model takes, with its type (from the builders' defaults; text when a default
    is None, as HiFormer's encoder)."""
    found: dict[str, type] = {}
    for entry in _REGISTRY.values():
        for key, default in entry.settings().items():
            if default is not None or key not in found:
                found[key] = str if default is None else type(default)
    return found


def register_model(
    name: str, capabilities: Capabilities, description: str = "", presets: dict[str, dict] | None = None
):
    """Decorator: ``@register_model("cs_unet", Capabilities(cnn="cnn", swin="swin"))`` on a function or class that
    returns an ``nn.Module`` from keyword settings; ``presets`` name sets of settings (``create_model("cs_unet",
    preset="paper-512")``)."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise SettingsError(f"model {name!r} is registered twice")
        doc = description or next(iter((builder.__doc__ or "").strip().splitlines()), "")
        entry = ModelEntry(name, builder, doc, presets or {}, capabilities)
        undescribed = sorted(set(entry.settings()) - set(SETTING_HELP))
        if undescribed:
            raise SettingsError(f"model {name!r}: settings {undescribed} have no help in SETTING_HELP")
        for preset, values in entry.presets.items():
            unknown = sorted(set(values) - set(entry.settings()))
            if unknown:
                raise SettingsError(f"model {name!r}: preset {preset!r} sets unknown settings {unknown}")
        _REGISTRY[name] = entry
        return builder

    return wrap


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise SettingsError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _REGISTRY[name]


def resolved_settings(name: str, settings: dict, preset: str | None = None) -> dict:
    """Every setting of ``name``: builder defaults, then the preset's values, then ``settings``. A checkpoint
    records this, so it rebuilds the same model even if a default changes later. Unknown names are an error."""
    entry = model_entry(name)
    defaults = entry.settings()
    unknown = sorted(set(settings) - set(defaults))
    if unknown:
        raise SettingsError(
            f"model {name!r} has no setting {', '.join(map(repr, unknown))}; its settings are {', '.join(defaults)}"
        )
    if preset is not None and preset not in entry.presets:
        raise SettingsError(
            f"model {name!r} has no preset {preset!r}; its presets are {', '.join(entry.presets) or 'none'}"
        )
    resolved = defaults | (entry.presets[preset] if preset else {}) | settings
    sizes = [key for key, default in defaults.items() if type(default) is int and default > 0]
    wrong = [f"{key} {resolved[key]!r}" for key in sizes if type(resolved[key]) is not int or resolved[key] < 1]
    if wrong:
        raise SettingsError(
            f"model {name!r}: {', '.join(wrong)}; sizes and counts are whole numbers of at least 1"
        )
    return resolved


def create_model(name: str, preset: str | None = None, **settings) -> nn.Module:
    """Build a registered architecture, e.g. ``create_model("cs_unet", num_classes=3, encoder="resnet50")`` or
    ``create_model("cs_unet", preset="paper-512")``; a setting the model does not take is an error."""
    classes = {"num_classes": settings.pop("num_classes")} if "num_classes" in settings else {}
    if classes and (type(classes["num_classes"]) is not int or classes["num_classes"] < 1):
        raise SettingsError(f"model {name!r}: {classes['num_classes']!r} classes; a model needs at least one")
    entry = model_entry(name)
    model = entry.builder(**classes, **resolved_settings(name, settings, preset))
    model.capabilities = entry.capabilities
    return model


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

"""What every image goes through before a model sees it: ImageNet normalisation, and the evaluation transforms of
the presets (no randomness; EBC's fixed crop). Training augmentation builds on these in ``csunet.train.augment``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from csunet.errors import SettingsError

if TYPE_CHECKING:
    import albumentations as A

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PRESETS = ("super", "ebc", "default")
"""Augmentation presets: ``super`` (flips and 90-degree rotations), ``ebc`` (horizontal flips, fixed evaluation
crop), ``default`` (``super``'s, for users' data)."""
EBC_VALIDATION_CROP = {"x_min": 256, "y_min": 356, "x_max": 768, "y_max": 868}
"""NASA's notebook evaluates EBC on this fixed 512x512 window of each 1024x1024 image."""


def check_preset(preset: str) -> str:
    if preset not in PRESETS:
        raise SettingsError(f"unknown augmentation preset {preset!r}; choose from {', '.join(PRESETS)}")
    return preset


def symmetric_tta(preset: str) -> str:
    """The test-time augmentation ``auto`` runs for a preset, as measured (``benchmarks/results/tta.md``): presets
    trained with every flip and quarter turn get the four flips (validation IoU up on all four Super tasks; all
    eight win no more at twice the cost); EBC's layers have an up and a down, and the one flip its training shows
    changed validation IoU by -0.001 to +0.002 (none: half the time)."""
    return "none" if check_preset(preset) == "ebc" else "flips"


def normalize() -> A.Normalize:
    import albumentations as A  # here, not at the top: reading PRESETS stays cheap

    return A.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD, max_pixel_value=1.0)


def eval_transform(preset: str, scale: float = 1.0) -> A.Compose:
    """Validation/test: no randomness; EBC takes NASA's fixed crop (of images resampled by ``scale``: the same
    part of the micrograph), the others the whole image."""
    import albumentations as A

    crop = {name: round(value * scale) for name, value in EBC_VALIDATION_CROP.items()}
    steps = [A.Crop(**crop)] if check_preset(preset) == "ebc" else []
    return A.Compose(steps + [normalize()])

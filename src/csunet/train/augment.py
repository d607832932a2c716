"""Augmentation presets of the paper's recipe (SPEC 1.5), as albumentations pipelines.

Images arrive as float32 in [0, 1] (see csunet.data), masks as class indices. Training: random crop to the tile
size when the image is larger (smaller ones are padded with unlabelled pixels), photometric jitter (contrast, brightness, gamma, blur or sharpen, Gaussian noise),
and geometry per preset: ``super`` flips both ways and rotates by 90 degrees, ``ebc`` flips horizontally only
(coating layers have an up and a down), ``default`` is ``super``'s for users' data. Every pipeline ends with
ImageNet normalisation.
"""

from __future__ import annotations

import albumentations as A

from csunet.data.masks import IGNORE_INDEX

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PRESETS = ("super", "ebc", "default")
EBC_VALIDATION_CROP = {"x_min": 256, "y_min": 356, "x_max": 768, "y_max": 868}
"""NASA's notebook evaluates EBC on this fixed 512x512 window of each 1024x1024 image."""


def normalize() -> A.Normalize:
    return A.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD, max_pixel_value=1.0)


def _photometric() -> list[A.BasicTransform]:
    return [
        A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
        A.RandomGamma(gamma_limit=(80, 120), p=0.5),
        A.OneOf([A.Blur(blur_limit=3), A.Sharpen(alpha=(0.1, 0.3))], p=0.3),
        A.GaussNoise(std_range=(0.01, 0.05), p=0.3),
    ]


def train_transform(preset: str, tile_size: int = 512) -> A.Compose:
    if preset not in PRESETS:
        raise ValueError(f"unknown augmentation preset {preset!r}; choose from {', '.join(PRESETS)}")
    geometry: list[A.BasicTransform] = [A.HorizontalFlip(p=0.5)]
    if preset != "ebc":
        geometry += [A.VerticalFlip(p=0.5), A.RandomRotate90(p=0.5)]
    crop = [
        A.PadIfNeeded(min_height=tile_size, min_width=tile_size, border_mode=0, fill=0, fill_mask=IGNORE_INDEX),
        A.RandomCrop(height=tile_size, width=tile_size),
    ]
    return A.Compose(crop + geometry + _photometric() + [normalize()])


def eval_transform(preset: str) -> A.Compose:
    """Validation/test: no randomness; EBC takes NASA's fixed crop, the others the whole image."""
    if preset not in PRESETS:
        raise ValueError(f"unknown augmentation preset {preset!r}; choose from {', '.join(PRESETS)}")
    steps = [A.Crop(**EBC_VALIDATION_CROP)] if preset == "ebc" else []
    return A.Compose(steps + [normalize()])

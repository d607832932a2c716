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
from csunet.data.transforms import check_preset, normalize


def _photometric() -> list[A.BasicTransform]:
    return [
        A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
        A.RandomGamma(gamma_limit=(80, 120), p=0.5),
        A.OneOf([A.Blur(blur_limit=3), A.Sharpen(alpha=(0.1, 0.3))], p=0.3),
        A.GaussNoise(std_range=(0.01, 0.05), p=0.3),
    ]


def train_transform(preset: str, tile_size: int = 512) -> A.Compose:
    geometry: list[A.BasicTransform] = [A.HorizontalFlip(p=0.5)]
    if check_preset(preset) != "ebc":
        geometry += [A.VerticalFlip(p=0.5), A.RandomRotate90(p=0.5)]
    crop = [
        A.PadIfNeeded(min_height=tile_size, min_width=tile_size, border_mode=0, fill=0, fill_mask=IGNORE_INDEX),
        A.RandomCrop(height=tile_size, width=tile_size),
    ]
    return A.Compose(crop + geometry + _photometric() + [normalize()])

"""Augmentation presets of the paper's recipe (SPEC 1.5), as albumentations pipelines.

Images arrive as float32 in [0, 1] (see csunet.data), masks as class indices. Training: random crop to the tile
size when the image is larger (smaller ones are padded with unlabelled pixels), photometric jitter, and geometry
per preset: ``super`` flips both ways and rotates by 90 degrees, ``ebc`` flips horizontally only (coating layers
have an up and a down), ``default`` is ``super``'s for users' data. Every pipeline ends with ImageNet
normalisation.

Photometric jitter (``PHOTOMETRIC``): ``mild`` is the paper's (contrast and brightness +-20 %, gamma 0.8-1.2,
blur or sharpen, Gaussian noise); ``wide`` spans what another specimen or microscope setting does to the grey
levels (gamma 0.4-2.5, as far as EBC-3's and Super-4's test specimens are from their training images:
``benchmarks/results/specimen_shift.md``; contrast and brightness +-40 %, a brightness gradient across the field,
stronger noise).
"""

from __future__ import annotations

import albumentations as A

from csunet.data.masks import IGNORE_INDEX
from csunet.data.transforms import check_preset, normalize
from csunet.errors import SettingsError
from csunet.train.recipes import PHOTOMETRIC


def _photometric(kind: str) -> list[A.BasicTransform]:
    if kind == "mild":
        return [
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
            A.RandomGamma(gamma_limit=(80, 120), p=0.5),
            A.OneOf([A.Blur(blur_limit=3), A.Sharpen(alpha=(0.1, 0.3))], p=0.3),
            A.GaussNoise(std_range=(0.01, 0.05), p=0.3),
        ]
    if kind != "wide":
        raise SettingsError(f"unknown photometric augmentation {kind!r}; choose from {', '.join(PHOTOMETRIC)}")
    return [
        # darker and brighter as often: gamma below and above 1 drawn with equal chance
        A.OneOf([A.RandomGamma(gamma_limit=(40, 100)), A.RandomGamma(gamma_limit=(100, 250))], p=0.8),
        A.RandomBrightnessContrast(brightness_limit=0.4, contrast_limit=0.4, p=0.8),
        A.Illumination(mode="linear", intensity_range=(0.05, 0.2), p=0.3),
        A.OneOf([A.Blur(blur_limit=3), A.Sharpen(alpha=(0.1, 0.3))], p=0.3),
        A.GaussNoise(std_range=(0.01, 0.08), p=0.4),
    ]


def train_transform(preset: str, tile_size: int = 512, photometric: str = "mild") -> A.Compose:
    geometry: list[A.BasicTransform] = [A.HorizontalFlip(p=0.5)]
    if check_preset(preset) != "ebc":
        geometry += [A.VerticalFlip(p=0.5), A.RandomRotate90(p=0.5)]
    crop = [
        A.PadIfNeeded(min_height=tile_size, min_width=tile_size, border_mode=0, fill=0, fill_mask=IGNORE_INDEX),
        A.RandomCrop(height=tile_size, width=tile_size),
    ]
    return A.Compose(crop + geometry + _photometric(photometric) + [normalize()])

"""Resampling images and masks to the scale a model works at.

A model trained at ``scale`` 0.5 sees every image at half its pixels across: a tile of 256 covers 512 pixels of the
micrograph, context that a layer 180 pixels thick needs. Training resamples the images and masks once when they
are read; prediction resamples the image, segments it, and brings the logits back to the image's own size, so
masks, measurements and pixel sizes stay in the image's pixels. One function per kind of array, used by both.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

MIN_SCALE, MAX_SCALE = 0.125, 4.0
"""The range of ``scale`` a training configuration takes: below an eighth a 1024-pixel micrograph is 128 pixels
across; above 4 a tile sees a few grains' worth of pixels blown up."""


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """The (height, width) of an image resampled by ``scale``, at least one pixel each."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def resample_tensor(tensor: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A (C, H, W) float tensor resampled to ``size``: bilinear, antialiased when it shrinks (so fine texture is
    averaged, not aliased), the same in training and prediction."""
    if tuple(tensor.shape[-2:]) == tuple(size):
        return tensor
    shrinks = size[0] < tensor.shape[-2] or size[1] < tensor.shape[-1]
    return F.interpolate(tensor[None], size=size, mode="bilinear", align_corners=False, antialias=shrinks)[0]


def resample_image(image: np.ndarray, scale: float) -> np.ndarray:
    """An (H, W, C) float image resampled by ``scale`` (1: unchanged)."""
    if scale == 1:
        return image
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)
    resampled = resample_tensor(tensor, scaled_size(*image.shape[:2], scale))
    return resampled.permute(1, 2, 0).contiguous().numpy()


def resample_mask(mask: np.ndarray, scale: float) -> np.ndarray:
    """An (H, W) class mask resampled by ``scale``: each new pixel takes the class of the nearest old one (labels
    are not averaged; the unlabelled value stays unlabelled)."""
    if scale == 1:
        return mask
    height, width = scaled_size(*mask.shape, scale)
    rows = np.minimum(((np.arange(height) + 0.5) * mask.shape[0] / height).astype(np.int64), mask.shape[0] - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * mask.shape[1] / width).astype(np.int64), mask.shape[1] - 1)
    return mask[np.ix_(rows, cols)]

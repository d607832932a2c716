"""Sliding-window inference for images of any size.

Tiles of the model's size are placed evenly so that they cover the image edge to edge with at least the requested
overlap; each tile's logits are weighted by a Gaussian window (centre pixels are the ones a network sees with most
context) and the weighted sums are divided by the summed weights, so the blend weights sum to one at every pixel.
Tiles run in batches; only the output arrays grow with the image. Test-time augmentation averages logits over
flips/rotations of each tile.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch.nn import functional as F

from csunet.errors import SettingsError, check_range

TTA_MODES = ("auto", "none", "hflip", "flips", "d4")
"""``hflip``: identity + horizontal flip (EBC: layers have an up and a down); ``flips``: + vertical and both;
``d4``: all eight flips and 90-degree rotations; ``auto``: what wins for the model's augmentation preset
(:func:`csunet.data.transforms.symmetric_tta`), resolved by the Predictor from the checkpoint."""
DEFAULT_TTA = "auto"
TTA_HELP = (
    "Test-time augmentation, the logits averaged over flipped tiles: auto (four flips, 4x the time; none for the "
    "ebc preset, where flips did not help), none, hflip, flips, d4."
)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


MAX_OVERLAP = 0.9
"""Beyond this, tiles overlap so much that their number explodes (0.99 on 512 tiles: a stride of 5 pixels)."""


def check_overlap(overlap: float) -> float:
    """Overlap is a share of the tile: in [0, MAX_OVERLAP]. Below 0 tiles leave gaps (pixels with no prediction)."""
    check_range("tile overlap", "overlap", overlap, 0, MAX_OVERLAP)
    return float(overlap)


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles along one axis: first at 0, last ending at ``length``, evenly spaced between, so that
    neighbours overlap by at least ``overlap`` of a tile and every position is covered."""
    check_overlap(overlap)
    if length <= tile:
        return [0]
    stride = max(1, int(tile * (1 - overlap)))
    count = math.ceil((length - tile) / stride) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def gaussian_window(tile: int, sigma_fraction: float = 0.125, device=None) -> torch.Tensor:
    """(tile, tile) weights peaking at 1 in the centre; the edge weight is kept above 1e-3 so no pixel gets 0."""
    coords = torch.arange(tile, dtype=torch.float32, device=device) - (tile - 1) / 2
    profile = torch.exp(-0.5 * (coords / (sigma_fraction * tile)) ** 2)
    return torch.outer(profile, profile).clamp_min(1e-3)


def _dihedral(x: torch.Tensor, index: int, inverse: bool = False) -> torch.Tensor:
    """The ``index``-th of the 8 flips/rotations of the last two axes (or its inverse)."""
    flip, turns = divmod(index, 4)
    if inverse:
        x = torch.rot90(x, -turns, dims=(-2, -1))
        return x.flip(-1) if flip else x
    x = x.flip(-1) if flip else x
    return torch.rot90(x, turns, dims=(-2, -1))


_TTA_INDICES = {"none": [0], "hflip": [0, 4], "flips": [0, 4, 6, 2], "d4": list(range(8))}
# index 4 = horizontal flip, 6 = horizontal flip + 180 degrees = vertical flip, 2 = 180 degrees = both flips


def check_tta(tta: str) -> str:
    if tta not in TTA_MODES:
        raise SettingsError(f"unknown test-time augmentation {tta!r}; choose from {', '.join(TTA_MODES)}")
    return tta


def predict_tiles(model: torch.nn.Module, tiles: torch.Tensor, tta: str = "none") -> torch.Tensor:
    """Logits of a batch of tiles, averaged over the test-time augmentations of ``tta``."""
    check_tta(tta)
    if tta not in _TTA_INDICES:
        raise SettingsError(f"test-time augmentation {tta!r} is resolved from a checkpoint (csunet.predictor)")
    indices = _TTA_INDICES[tta]
    total = None
    for index in indices:
        out = _dihedral(model(_dihedral(tiles, index)), index, inverse=True)
        total = out if total is None else total + out
    return total / len(indices)


def _positions(height: int, width: int, tile: int, overlap: float) -> Iterator[tuple[int, int]]:
    for top in tile_starts(height, tile, overlap):
        for left in tile_starts(width, tile, overlap):
            yield top, left


@torch.no_grad()
def sliding_window_logits(
    model: torch.nn.Module,
    image: torch.Tensor,
    tile: int,
    overlap: float = 0.5,
    batch_size: int = 4,
    tta: str = "none",
    output_device: torch.device | str | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Blended logits (K, H, W) of one normalised image (C, H, W) of any size.

    ``on_batch(done, total)`` is called after each batch of tiles (progress bars; raising in it stops the image).

    Tiles move to the model's device in batches; the accumulators live on ``output_device`` (default: the
    image's), so a huge image can stay in host memory while tiles run on a GPU. Images smaller than a tile are
    zero-padded (zero = the dataset mean after normalisation) and the padding is cut off again.
    """
    if image.ndim != 3:
        raise SettingsError(f"expected one image (C, H, W), got shape {tuple(image.shape)}")
    model_device = model.device if hasattr(model, "device") else next(model.parameters()).device
    output_device = image.device if output_device is None else torch.device(output_device)
    height, width = image.shape[-2:]
    pad_h, pad_w = max(0, tile - height), max(0, tile - width)
    if pad_h or pad_w:
        image = F.pad(image, (0, pad_w, 0, pad_h))
    full_h, full_w = image.shape[-2:]
    window = gaussian_window(tile, device=output_device)
    logits = None
    weights = torch.zeros(full_h, full_w, device=output_device)
    positions = list(_positions(full_h, full_w, tile, overlap))
    for first in range(0, len(positions), batch_size):
        chunk = positions[first : first + batch_size]
        tiles = torch.stack([image[:, y : y + tile, x : x + tile] for y, x in chunk]).to(model_device)
        tiles = tiles.contiguous(memory_format=torch.channels_last)
        out = predict_tiles(model, tiles, tta).float().to(output_device)
        if logits is None:
            logits = torch.zeros(out.shape[1], full_h, full_w, device=output_device)
        for (y, x), tile_logits in zip(chunk, out):
            logits[:, y : y + tile, x : x + tile] += tile_logits * window
            weights[y : y + tile, x : x + tile] += window
        if on_batch is not None:
            on_batch(first + len(chunk), len(positions))
    logits /= weights
    return logits[:, :height, :width]

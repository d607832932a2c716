"""Validation that stays cheap on large images: a fixed set of windows of the validation images instead of the
whole images, chosen once so that every class is in them, the rarest first.

Ten validation images of 1024x703 take 850 tiles of 128 pixels; validating them whole after every epoch leaves
room for four validations in ten CPU minutes, too few for a schedule to react to or for the best checkpoint to be
chosen from. Windows three tiles wide keep the sliding window's context; the full validation split is evaluated
once at the end of training (``summary.json``: ``full_validation``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from csunet.data.masks import IGNORE_INDEX
from csunet.inference import tile_starts

WINDOW_TILES = 3
"""A validation window is this many tiles across (or the whole image, when smaller)."""


@dataclass(frozen=True)
class Window:
    image: int
    top: int
    left: int
    height: int
    width: int


def window_cost(height: int, width: int, tile: int, overlap: float) -> int:
    """Tiles the sliding window runs over a ``height`` x ``width`` region."""
    return len(tile_starts(height, tile, overlap)) * len(tile_starts(width, tile, overlap))


def choose_windows(
    masks: list[np.ndarray], tile: int, overlap: float, limit: int, background: int | None
) -> list[Window]:
    """Windows of ``WINDOW_TILES`` tiles on a grid over every mask, at most ``limit`` tiles' worth: first the window
    holding most of each class (rarest class first), then those holding most of all classes, each class's pixels
    counted relative to its total (so a rare class's pixels count for more)."""
    classes = sorted({int(v) for m in masks for v in np.unique(m)} - {IGNORE_INDEX, background})
    totals = {c: sum(int((m == c).sum()) for m in masks) for c in classes}
    candidates, counts = [], []
    for index, mask in enumerate(masks):
        height, width = mask.shape
        size_h, size_w = min(height, WINDOW_TILES * tile), min(width, WINDOW_TILES * tile)
        for top in tile_starts(height, size_h, 0.0):
            for left in tile_starts(width, size_w, 0.0):
                window = mask[top : top + size_h, left : left + size_w]
                candidates.append(Window(index, top, left, size_h, size_w))
                counts.append([int((window == c).sum()) / totals[c] for c in classes])
    share = np.array(counts).reshape(len(candidates), len(classes))
    by_class = [int(np.argmax(share[:, k])) for k in np.argsort([totals[c] for c in classes])]
    by_all = np.argsort(-share.sum(axis=1), kind="stable").tolist()
    chosen: list[int] = []
    spent = 0
    for position in by_class + by_all:
        if position in chosen:
            continue
        window = candidates[position]
        cost = window_cost(window.height, window.width, tile, overlap)
        if chosen and spent + cost > limit:
            continue
        chosen.append(position)
        spent += cost
    return sorted((candidates[p] for p in chosen), key=lambda w: (w.image, w.top, w.left))


class ValidationWindows(Dataset):
    """The windows of an evaluation dataset's transformed images and masks, as (image (C, h, w), mask (h, w))."""

    def __init__(self, dataset: Dataset, windows: list[Window]) -> None:
        self.dataset, self.windows = dataset, windows

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        window = self.windows[index]
        image, mask = self.dataset[window.image]
        rows = slice(window.top, window.top + window.height)
        cols = slice(window.left, window.left + window.width)
        return image[:, rows, cols], mask[rows, cols]

    def tiles(self, tile: int, overlap: float) -> int:
        return sum(window_cost(w.height, w.width, tile, overlap) for w in self.windows)

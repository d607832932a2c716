"""Scribbles simulated from complete masks: what a user paints in a few minutes instead of labelling every pixel.

A user who scribbles paints strokes well inside regions of each class (where they are sure), about as many per
class whatever its share of the image, and a few careful strokes across the boundaries between classes. The
simulation does the same from a true mask: brush strokes (random walks that stop before they would touch another
class) started in a class drawn uniformly among those present, and thin straight strokes across boundaries taking a
share ``across`` of the labelled pixels, until ``share`` of the image is labelled. Every painted pixel carries its
true class: the strokes are correct, only sparse. Seeded: the same mask, share and seed give the same strokes.

:func:`write_scribble_dataset` turns a dataset into a sparse one (``csunet data scribble``): the training and
validation masks become scribbles, the test masks stay complete (scores stay comparable with a dense-label model).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.draw import line

from csunet.data.dataset import load_description, pair_split
from csunet.data.description import DatasetDescription, SplitFolders
from csunet.data.errors import DataError
from csunet.data.masks import IGNORE_INDEX, IndexEncoding, read_mask
from csunet.render import png_bytes
from csunet.utils import atomic_write_bytes

BRUSH_RADIUS = 2
"""Stroke half-width in pixels: a 5-pixel brush."""
STROKE_STEPS = 40
"""A brush stroke is at most this many steps of ``STEP`` pixels."""
STEP = 2.0
ACROSS_SHARE = 0.1
"""Share of the labelled pixels painted by thin strokes across class boundaries."""
ACROSS_LENGTH = 24
"""Length in pixels of a stroke across a boundary."""
UNLABELLED_VALUE = 255
"""Raw value of unlabelled pixels in the written scribble masks."""


def _disc(radius: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    inside = rows**2 + cols**2 <= radius**2
    return rows[inside], cols[inside]


def simulate_scribbles(
    mask: np.ndarray, share: float, seed: int, across: float = ACROSS_SHARE, brush: int = BRUSH_RADIUS
) -> np.ndarray:
    """A copy of the class mask ``mask`` with all but about ``share`` of its pixels set to ``IGNORE_INDEX``."""
    if not 0 < share <= 1:
        raise DataError(f"the labelled share must be in (0, 1], not {share}")
    generator = np.random.default_rng(seed)
    height, width = mask.shape
    scribbles = np.full(mask.shape, IGNORE_INDEX, dtype=np.uint8)
    classes = [int(c) for c in np.unique(mask) if c != IGNORE_INDEX]
    wanted = share * int((mask != IGNORE_INDEX).sum())
    # distance of every pixel to the nearest pixel of another class: where a brush fits without crossing over
    room = {c: ndimage.distance_transform_edt(mask == c) for c in classes}
    starts = {c: np.flatnonzero(room[c] > brush) for c in classes}
    starts = {c: found if len(found) else np.flatnonzero(mask == c) for c, found in starts.items()}
    disc_rows, disc_cols = _disc(brush)

    boundary = np.zeros(mask.shape, dtype=bool)
    boundary[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    boundary[1:, :] |= mask[1:, :] != mask[:-1, :]
    boundary_pixels = np.flatnonzero(boundary)
    painted = 0
    if len(boundary_pixels) and across > 0:
        while painted < across * wanted:
            row, col = divmod(int(generator.choice(boundary_pixels)), width)
            angle = generator.uniform(0, np.pi)
            half = ACROSS_LENGTH / 2
            rows, cols = line(
                *(int(round(v)) for v in (row - half * np.sin(angle), col - half * np.cos(angle),
                                          row + half * np.sin(angle), col + half * np.cos(angle)))
            )  # fmt: skip
            keep = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
            rows, cols = rows[keep], cols[keep]
            painted += int((scribbles[rows, cols] == IGNORE_INDEX).sum())
            scribbles[rows, cols] = mask[rows, cols]

    while painted < wanted:
        target = classes[int(generator.integers(len(classes)))]
        row, col = (float(v) for v in divmod(int(generator.choice(starts[target])), width))
        heading = generator.uniform(0, 2 * np.pi)
        for _ in range(STROKE_STEPS):
            r, c = int(round(row)), int(round(col))
            if not (0 <= r < height and 0 <= c < width) or mask[r, c] != target:
                break
            rows, cols = disc_rows + r, disc_cols + c
            keep = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
            rows, cols = rows[keep], cols[keep]
            keep = mask[rows, cols] == target  # a brush that touches another class paints only its own
            rows, cols = rows[keep], cols[keep]
            painted += int((scribbles[rows, cols] == IGNORE_INDEX).sum())
            scribbles[rows, cols] = target
            if room[target][r, c] <= brush:
                break  # at the edge of the region: the user lifts the pen
            heading += generator.normal(0, 0.35)
            row, col = row + STEP * np.sin(heading), col + STEP * np.cos(heading)
    return scribbles


def _seed(seed: int, name: str) -> int:
    """One seed per image, from the run's seed and the image's name (stable across processes, unlike hash())."""
    return seed * 1_000_003 + zlib.crc32(name.encode())


def write_scribble_dataset(
    data: str | os.PathLike | DatasetDescription,
    out: str | os.PathLike,
    share: float,
    seed: int = 0,
    sparse_splits: tuple[str, ...] = ("train", "val"),
    data_root: str | os.PathLike | None = None,
) -> Path:
    """Write a sparse copy of ``data`` into ``out``: scribbles for ``sparse_splits`` and the complete masks for the
    other splits (:func:`write_masks_copy`). Returns the description's path."""
    if not 0 < share <= 1:
        raise DataError(f"the labelled share must be in (0, 1], not {share}")
    description = load_description(data, data_root)

    def scribbled(split: str, image_path: Path, mask: np.ndarray) -> np.ndarray:
        return simulate_scribbles(mask, share, _seed(seed, image_path.name)) if split in sparse_splits else mask

    return write_masks_copy(description, out, f"{description.name}-scribbles-{share:g}", scribbled)


def write_masks_copy(
    description: DatasetDescription,
    out: str | os.PathLike,
    name: str,
    change: Callable[[str, Path, np.ndarray], np.ndarray] | None = None,
) -> Path:
    """Write ``description``'s masks into ``out`` as index masks (class k at value k, unlabelled at 255), each
    mask first passed through ``change(split, image path, class mask)``, and a ``dataset.yaml`` reading them beside
    the original images. Returns the description's path."""
    out = Path(out)
    if out.joinpath("dataset.yaml").exists():
        raise DataError(f"{out}: holds a dataset already; choose a new folder")
    splits = {}
    for split in description.splits:
        folders = description.split(split)
        target = out / "masks" / split
        pairs = pair_split(description, split).pairs
        if not pairs:
            raise DataError(f"{folders.images}: split {split!r} has no image with a matching mask")
        for image_path, mask_path in pairs:
            mask = read_mask(mask_path, description.encoding)
            if change is not None:
                mask = change(split, image_path, mask)
            raw = np.where(mask == IGNORE_INDEX, UNLABELLED_VALUE, mask).astype(np.uint8)
            atomic_write_bytes(target / f"{image_path.stem}.png", png_bytes(raw))
        splits[split] = SplitFolders(folders.images.resolve(), target.resolve(), folders.names)
    values = {index: index for index in range(description.num_classes)}
    copy = replace(
        description,
        name=name,
        encoding=IndexEncoding(values, ignore=UNLABELLED_VALUE),
        splits=splits,
        mask_suffix="",
        source=None,
    )
    path = out / "dataset.yaml"
    copy.save(path)
    return path

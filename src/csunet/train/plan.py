"""Settings derived from the data, as nnU-Net derives its plan from a dataset fingerprint: what the fast recipe
leaves unset is chosen from the image sizes and the validation cost, printed with the reason, and recorded in
``config.yaml`` (so a resumed run keeps it). Anything given explicitly is kept as given."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

import numpy as np

from csunet.data import DatasetDescription
from csunet.data.dataset import pair_split
from csunet.data.io import read_array, read_image
from csunet.data.masks import SPARSE_BELOW, labelled_share, read_mask
from csunet.data.pixel_classifier import fit_forest, forest_mask
from csunet.data.scale import MIN_SCALE, resample_image, resample_mask, scaled_size
from csunet.errors import SettingsError
from csunet.inference import tile_starts
from csunet.models.registry import model_entry, resolved_settings
from csunet.models.swin import check_grid
from csunet.train.config import TrainConfig

VALIDATION_SHARE = 0.2
"""Validation should take about this share of the time between two validations."""
TRAIN_COST_PER_CROP = 3.0
"""A training crop costs about three forward passes of a tile (forward, backward, update)."""
VALIDATION_TILE_LIMIT = 128
"""Whole validation images that take more tiles than this are validated on fixed windows of them instead."""
MIN_VALIDATIONS = 4
"""A step budget is split into at least this many epochs, so the best checkpoint has something to choose from."""
SCALE_WIDTH = 64
"""The fast recipe shrinks the images until the narrowest class's regions are about this many pixels across
(never enlarging them): wide regions then fit a tile with context around them at no cost per step (EBC's oxide
layers, 170-200 pixels thick), while thin ones (Super's 7-pixel tertiary precipitates) keep every pixel."""
SCALE_STEP = 0.05
"""Derived scales are rounded down to a multiple of this (0.35, not 0.3556)."""


def image_sizes(description: DatasetDescription, split: str) -> list[tuple[int, int]]:
    return [read_array(image).shape[:2] for image, _ in pair_split(description, split).pairs]


def tile_count(sizes: Iterable[tuple[int, int]], tile: int, overlap: float) -> int:
    """Tiles a sliding window of ``tile`` pixels at ``overlap`` takes over images of these (height, width) sizes."""
    return sum(len(tile_starts(h, tile, overlap)) * len(tile_starts(w, tile, overlap)) for h, w in sizes)


def validation_steps(config: TrainConfig, description: DatasetDescription, tile: int, scale: float) -> float:
    """What one validation costs in training steps of ``config``: its tiles (at most ``val_tiles`` of them), a
    forward pass each, against a step's crops of :data:`TRAIN_COST_PER_CROP` forward passes each. Known before the
    first validation, whatever an epoch's length."""
    sizes = [scaled_size(*size, scale) for size in image_sizes(description, config.val_split)]
    tiles = tile_count(sizes, tile, config.val_overlap)
    if config.val_tiles:
        tiles = min(tiles, config.val_tiles)
    return tiles / (config.batch_size * TRAIN_COST_PER_CROP)


def fits(size: int, window: int | None, multiple: int) -> bool:
    """Whether a tile of ``size`` pixels splits into Swin windows of ``window`` at every stage (None: any size)."""
    try:
        if window is not None:
            check_grid(size, window, multiple)
    except SettingsError:
        return False
    return True


def largest_fitting_tile(limit: int, window: int | None, multiple: int) -> int:
    """The largest multiple of ``multiple`` no larger than ``limit`` whose Swin token grids split into ``window``
    windows."""
    for size in range(limit - limit % multiple, multiple - 1, -multiple):
        if fits(size, window, multiple):
            return size
    raise SettingsError(f"images of {limit} pixels are too small for any tile of this model")


def smallest_fitting_tile(least: float, window: int | None, multiple: int) -> int:
    """The smallest multiple of ``multiple`` of at least ``least`` pixels whose Swin token grids split into
    windows."""
    size = max(multiple, math.ceil(least / multiple) * multiple)
    while not fits(size, window, multiple):
        size += multiple
    return size


GUESS_SIDE = 256
"""Strokes are grown into whole regions on images shrunk until their shorter side is about this many pixels: the
filters then see 4x as far on a 1024-pixel micrograph, and the guess takes seconds, not minutes."""
GUESS_SMOOTHING = 2.0
"""Sigma (pixels of the shrunk images) of the smoothing of the forest's class probabilities. Chosen on the training
splits, strokes over 1 and 3 % against the complete training masks: 0 / 1 / 2 / 4 guessed EBC-1's oxide 67-77 /
117-120 / 144-145 / 169-172 pixels wide (truth 180), and at 4 Super-1's 7-pixel tertiary vanished; at 2 it is
5-7 pixels (2026-12-03, the note on issue 29)."""


def mask_region_widths(
    masks: Iterable[np.ndarray], classes: list[str], background: int | None
) -> dict[str, float]:
    """Per class other than the background: how wide its regions are across, as the mean length of the runs of
    its pixels along rows and along columns, whichever is shorter (a layer's thickness, a particle's diameter)."""
    pixels: dict[int, int] = {}
    runs: dict[tuple[int, int], int] = {}
    for mask in masks:
        for index in np.unique(mask):
            inside = (mask == index).astype(np.int8)
            pixels[index] = pixels.get(index, 0) + int(inside.sum())
            for axis in (0, 1):
                starts = np.count_nonzero(np.diff(inside, axis=axis) == 1) + np.count_nonzero(inside.take(0, axis))
                runs[index, axis] = runs.get((index, axis), 0) + starts
    return {
        classes[index]: min(pixels[index] / runs[index, axis] for axis in (0, 1))
        for index in sorted(pixels)
        if index != background and index < len(classes)
    }


def region_widths(description: DatasetDescription) -> tuple[dict[str, float], str]:
    """:func:`mask_region_widths` of the training masks, and where they come from. Strokes (sparse masks) are as
    wide as the brush, not as the regions they mark: their widths are those of the regions a random forest on
    filter features (``csunet.data.pixel_classifier``), fitted on the strokes, finds in the training images."""
    pairs = pair_split(description, "train").pairs
    masks = [read_mask(mask_path, description.encoding) for _, mask_path in pairs]
    if labelled_share(masks) >= SPARSE_BELOW:
        return mask_region_widths(masks, description.classes, description.background), "the training masks"
    shrink = min(1.0, GUESS_SIDE / min(min(mask.shape) for mask in masks))
    shrunk = [(resample_image(read_image(image), shrink), resample_mask(mask, shrink))
              for (image, _), mask in zip(pairs, masks)]  # fmt: skip
    forest = fit_forest(shrunk)
    guessed = [forest_mask(forest, image, GUESS_SMOOTHING) for image, _ in shrunk]
    widths = {name: width / shrink for name, width in
              mask_region_widths(guessed, description.classes, description.background).items()}  # fmt: skip
    # a class the strokes mark but the guess lost (a thin one, smoothed away) keeps its strokes' width: never shrink
    # the images on a guess that no longer shows the narrowest class
    strokes = mask_region_widths(masks, description.classes, description.background)
    return strokes | widths, "the regions a pixel classifier grew from the strokes"


def plan(config: TrainConfig, description: DatasetDescription) -> tuple[TrainConfig, list[str]]:
    """``config`` with the data-dependent settings of the fast recipe filled in, and one line of reason for each."""
    if config.recipe != "fast":
        return config, []
    reasons, changes = [], {}
    train_sizes = image_sizes(description, "train")
    val_sizes = image_sizes(description, config.val_split)
    settings = resolved_settings(config.model, config.model_settings)
    tile = config.tile_size
    entry = model_entry(config.model)
    window = settings.get("window_size") if entry.fixed_input_size else None
    multiple = entry.capabilities.size_multiple
    widths, source = region_widths(description) if {"tile_size", "scale"} & set(config.from_recipe) else ({}, "")
    narrowest = min(widths, key=widths.get, default=None)
    if "scale" in config.from_recipe and narrowest is not None and widths[narrowest] > SCALE_WIDTH:
        scale = max(MIN_SCALE, math.floor(SCALE_WIDTH / widths[narrowest] / SCALE_STEP) * SCALE_STEP)
        changes["scale"] = round(scale, 4)
        reasons.append(
            f"scale {changes['scale']:g}: the narrowest regions ({narrowest}) are {widths[narrowest]:.0f} pixels "
            f"across in {source}, {widths[narrowest] * scale:.0f} at this scale: a tile sees {1 / scale:.1f} times "
            "as far at the same cost per step"
        )
    scale = changes.get("scale", config.scale)
    widths = {name: width * scale for name, width in widths.items()}
    train_sizes = [scaled_size(*size, scale) for size in train_sizes]
    val_sizes = [scaled_size(*size, scale) for size in val_sizes]
    smallest = min(min(size) for size in train_sizes + val_sizes)
    if "tile_size" in config.from_recipe:
        widest = max(widths, key=widths.get, default=None)
        if widest is not None and widths[widest] > tile:
            tile = min(
                smallest_fitting_tile(widths[widest], window, multiple),
                largest_fitting_tile(smallest, window, multiple),
            )
            changes["tile_size"] = tile
            reasons.append(
                f"tile_size {tile}: {widest} regions are {widths[widest]:.0f} pixels across (mean run along their "
                "thinner axis), wider than the recipe's tiles, and a crop should see both edges of one"
            )
        elif smallest < tile:
            tile = largest_fitting_tile(smallest, window, multiple)
            changes["tile_size"] = tile
            reasons.append(
                f"tile_size {tile}: the smallest image is {smallest} pixels, smaller than the recipe's tiles"
            )
    tiles = tile_count(val_sizes, tile, config.val_overlap)
    validated = f"validating {len(val_sizes)} images takes {tiles} tiles"
    if config.val_tiles is None:
        changes["val_tiles"] = VALIDATION_TILE_LIMIT if tiles > VALIDATION_TILE_LIMIT else 0
        if changes["val_tiles"]:
            reasons.append(
                f"val_tiles {VALIDATION_TILE_LIMIT}: {validated}; fixed windows of them worth at most "
                f"{VALIDATION_TILE_LIMIT}, every class in them, validate after each epoch, the whole images once at "
                "the end"
            )
            validated = (
                f"validating windows of {len(val_sizes)} images takes at most {VALIDATION_TILE_LIMIT} tiles"
            )
            tiles = VALIDATION_TILE_LIMIT
    elif config.val_tiles:
        tiles = min(tiles, config.val_tiles)
    if config.crops_per_epoch is None:
        crops = tiles * (1 - VALIDATION_SHARE) / VALIDATION_SHARE / TRAIN_COST_PER_CROP
        steps = max(2, math.ceil(crops / config.batch_size))
        why = (
            f"{validated}, so this many training crops between validations keep validation near "
            f"{VALIDATION_SHARE:.0%} of the time"
        )
        if config.max_steps and steps > config.max_steps // MIN_VALIDATIONS:
            # a short budget: MIN_VALIDATIONS validations when together they cost no more than the training does,
            # else as many as do (at least the one at the end)
            # (as many as divide the steps evenly, so the step budget stays as given)
            affordable = int(config.max_steps * config.batch_size * TRAIN_COST_PER_CROP // max(tiles, 1))
            most = max(1, min(MIN_VALIDATIONS, affordable))
            validations = next(v for v in range(most, 0, -1) if config.max_steps % v == 0)
            steps = max(1, config.max_steps // validations)
            why = f"{validations} validation{'s' * (validations > 1)} within the {config.max_steps} steps" + (
                "" if most == MIN_VALIDATIONS else f" ({validated}: more would cost more than training)"
            )
        changes["crops_per_epoch"] = steps * config.batch_size
        reasons.append(f"crops_per_epoch {steps * config.batch_size}: {why}")
        if config.max_steps and config.max_steps % steps:
            changes["max_steps"] = math.ceil(config.max_steps / steps) * steps
            reasons.append(
                f"max_steps {changes['max_steps']}: a whole number of {steps}-step epochs, so the last step is "
                "followed by a validation"
            )
    return dataclasses.replace(config, **changes), reasons

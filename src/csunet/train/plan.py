"""Settings derived from the data, as nnU-Net derives its plan from a dataset fingerprint: what the fast recipe
leaves unset is chosen from the image sizes and the validation cost, printed with the reason, and recorded in
``config.yaml`` (so a resumed run keeps it). Anything given explicitly is kept as given."""

from __future__ import annotations

import dataclasses
import math

from csunet.data import DatasetDescription
from csunet.data.dataset import pair_split
from csunet.data.io import read_array
from csunet.errors import SettingsError
from csunet.inference import tile_starts
from csunet.models.registry import resolved_settings
from csunet.models.swin import check_grid
from csunet.train.config import TrainConfig

VALIDATION_SHARE = 0.2
"""Validation should take about this share of the time between two validations."""
TRAIN_COST_PER_CROP = 3.0
"""A training crop costs about three forward passes of a tile (forward, backward, update)."""
MIN_VALIDATIONS = 4
"""A step budget is split into at least this many epochs, so the best checkpoint has something to choose from."""


def image_sizes(description: DatasetDescription, split: str) -> list[tuple[int, int]]:
    return [read_array(image).shape[:2] for image, _ in pair_split(description, split).pairs]


def largest_fitting_tile(limit: int, window: int | None) -> int:
    """The largest multiple of 32 no larger than ``limit`` whose Swin token grids split into ``window`` windows."""
    for size in range(limit - limit % 32, 31, -32):
        try:
            if window is not None:
                check_grid(size, window)
            return size
        except SettingsError:
            continue
    raise SettingsError(f"images of {limit} pixels are too small for any tile of this model")


def plan(config: TrainConfig, description: DatasetDescription) -> tuple[TrainConfig, list[str]]:
    """``config`` with the data-dependent settings of the fast recipe filled in, and one line of reason for each."""
    if config.recipe != "fast":
        return config, []
    reasons, changes = [], {}
    train_sizes = image_sizes(description, "train")
    val_sizes = image_sizes(description, config.val_split)
    smallest = min(min(size) for size in train_sizes + val_sizes)
    settings = resolved_settings(config.model, config.model_settings)
    tile = config.tile_size
    if "tile_size" in config.from_recipe and smallest < tile:
        tile = largest_fitting_tile(smallest, settings.get("window_size") if "img_size" in settings else None)
        changes["tile_size"] = tile
        reasons.append(
            f"tile_size {tile}: the smallest image is {smallest} pixels, smaller than the recipe's tiles"
        )
    if config.crops_per_epoch is None:
        tiles = sum(
            len(tile_starts(h, tile, config.val_overlap)) * len(tile_starts(w, tile, config.val_overlap))
            for h, w in val_sizes
        )
        crops = tiles * (1 - VALIDATION_SHARE) / VALIDATION_SHARE / TRAIN_COST_PER_CROP
        steps = max(2, math.ceil(crops / config.batch_size))
        why = (
            f"validating {len(val_sizes)} images takes {tiles} tiles, so this many training crops between "
            f"validations keep validation near {VALIDATION_SHARE:.0%} of the time"
        )
        if config.max_steps and steps > config.max_steps // MIN_VALIDATIONS:
            steps = max(1, config.max_steps // MIN_VALIDATIONS)
            why = f"at least {MIN_VALIDATIONS} validations within the {config.max_steps} steps"
        changes["crops_per_epoch"] = steps * config.batch_size
        reasons.append(f"crops_per_epoch {steps * config.batch_size}: {why}")
        if config.max_steps and config.max_steps % steps:
            changes["max_steps"] = math.ceil(config.max_steps / steps) * steps
            reasons.append(
                f"max_steps {changes['max_steps']}: a whole number of {steps}-step epochs, so the last step is "
                "followed by a validation"
            )
    return dataclasses.replace(config, **changes), reasons

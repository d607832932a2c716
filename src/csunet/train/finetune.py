"""Fine-tuning a trained checkpoint on new or corrected masks (the napari plugin's "Fine-tune", and
``csunet train --init-weights``): the checkpoint's model, tile size and loss with the fast recipe's optimiser and
schedule over a short budget, at a lower learning rate, so that it adapts without forgetting."""

from __future__ import annotations

import os

from csunet.checkpoint import META_KEY, CheckpointMeta, read_checkpoint
from csunet.train.config import TrainConfig
from csunet.train.recipes import RECIPES

FINE_TUNE_STEPS = 100
"""Default budget in optimiser steps."""
FINE_TUNE_LR = 1e-4
"""Peak learning rate: a quarter of the fast recipe's, since the weights start trained."""


def fine_tune_config(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    name: str | None = None,
    max_steps: int = FINE_TUNE_STEPS,
    max_minutes: float | None = None,
    lr: float = FINE_TUNE_LR,
) -> TrainConfig:
    """The configuration that continues ``checkpoint`` on the dataset description ``data``."""
    meta = CheckpointMeta.from_dict(read_checkpoint(checkpoint)[META_KEY], checkpoint)
    recipe = meta.recipe
    return TrainConfig(
        data=str(data),
        **checkpoint_model(meta),
        loss=recipe.get("loss", RECIPES["paper"]["loss"]),  # a checkpoint without one was trained with the paper's
        recipe="fast",
        init_weights=str(checkpoint),
        max_steps=max_steps,
        max_minutes=max_minutes,
        lr=lr,
        batch_size=recipe.get("batch_size", TrainConfig.batch_size),
        out=str(out),
        name=name,
    )


def checkpoint_model(meta: CheckpointMeta) -> dict:
    """The model, its settings and tile size of a trained checkpoint: what training on from its weights repeats
    (`train --init-weights` and napari's fine-tuning take them from here, so nobody retypes model flags)."""
    return {"model": meta.model, "model_settings": dict(meta.model_settings), "tile_size": meta.tile_size}

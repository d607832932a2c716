"""Short trainings for people at the microscope: a first model from a few strokes, and fine-tuning a trained
checkpoint on new or corrected masks (the napari plugin's "Train from strokes" and "Fine-tune", and
``csunet train --init-weights``).

A first model is the small CPU model with the fast recipe for about a minute (``FIRST_MODEL_MINUTES``): on two
cores the first segmentation of the sample micrograph appears within two minutes of pressing Train. Fine-tuning
keeps the checkpoint's model, tile size and loss, with the fast recipe's optimiser and schedule over a short
budget at a lower learning rate, so that it adapts without forgetting."""

from __future__ import annotations

import os

from csunet.checkpoint import META_KEY, CheckpointMeta, read_checkpoint
from csunet.train.config import TrainConfig
from csunet.train.recipes import RECIPES, SMALL_MODEL

FIRST_MODEL_MINUTES = 1.25
"""Training time of a first model from strokes; with start-up and segmenting, under two minutes on two cores."""
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
    """The model, its settings, tile size and scale of a trained checkpoint: what training on from its weights
    repeats (`train --init-weights` and napari's fine-tuning take them from here, so nobody retypes model flags)."""
    return {"model": meta.model, "model_settings": dict(meta.model_settings), "tile_size": meta.tile_size,
            "scale": meta.scale}  # fmt: skip


def first_model_config(
    data: str | os.PathLike,
    out: str | os.PathLike,
    name: str | None = None,
    minutes: float = FIRST_MODEL_MINUTES,
    scale: float | None = None,
) -> TrainConfig:
    """A model from nothing on the dataset description ``data`` (strokes, typically), within ``minutes``, at
    ``scale`` (None: the plan's, guessed from the strokes)."""
    return TrainConfig(data=str(data), **SMALL_MODEL, recipe="fast", batch_size=4, max_steps=0,
                       max_minutes=minutes, out=str(out), name=name, scale=scale)  # fmt: skip

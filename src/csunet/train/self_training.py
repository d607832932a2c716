"""Self-training on strokes (``--pseudo-labels``): a model trained on a few strokes labels the rest of the training
images where it is confident, and training goes on from it on those fuller masks.

Strokes cover a few per cent of the pixels, mostly well inside regions; a model trained on them for a while is
already right over most of each image, and its confident predictions show the next epochs the boundaries and the
context that the strokes leave out. The budget is shared: the first round gets half of it (steps and minutes), the
prediction of the training images and the second round the rest, so a run with pseudo-labels takes as long as one
without. Validation stays on the strokes the user painted (pseudo-labels never grade the model that made them).

Files: the first round is a run folder of its own (``<name>-round1``); the masks it fills, with the description
both rounds read, lie in ``<name>-pseudo-labels``; the second round is the run named ``<name>``, which
``--resume`` continues as any run.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path

import numpy as np

from csunet.checkpoint import load_checkpoint
from csunet.data import load_description
from csunet.data.dataset import pair_split
from csunet.data.description import DatasetDescription
from csunet.data.holdout import hold_out
from csunet.data.io import read_image
from csunet.data.masks import IGNORE_INDEX, SPARSE_BELOW, labelled_share, read_mask
from csunet.data.scribbles import write_masks_copy
from csunet.errors import SettingsError
from csunet.predictor import Predictor
from csunet.runs import RunFolder, write_json
from csunet.train.config import TrainConfig

log = logging.getLogger(__name__)

CONFIDENCE = 0.9
"""A pixel takes the model's class when the model gives that class at least this probability."""
FIRST_ROUND = 0.5
"""Share of the budget (steps, minutes) for the first round, on the strokes alone."""


def fill_unlabelled(mask: np.ndarray, classes: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """``mask`` with each unlabelled pixel given the predicted class where ``confidence`` reaches
    ``CONFIDENCE``; labelled pixels keep what the user painted."""
    confident = (mask == IGNORE_INDEX) & (confidence >= CONFIDENCE)
    return np.where(confident, classes, mask).astype(mask.dtype)


def train_in_two_rounds(config: TrainConfig, run_dir: Path, progress: bool, callbacks: list | None) -> dict:
    """Train ``config`` (whose ``pseudo_labels`` is set) as strokes, pseudo-labels, strokes + pseudo-labels; the
    summary of the second round, with what the pseudo-labels added."""
    from csunet.train.run import train  # the verb this one runs twice

    started = time.monotonic()
    description = hold_out(
        load_description(config.data, config.data_root), config.val_fraction, config.test_fraction, config.seed
    )
    folder = run_dir.parent / f"{run_dir.name}-pseudo-labels"
    if folder.exists():
        raise SettingsError(f"{folder}: exists already (pseudo-labels of an earlier run); choose another --name")
    painted = labelled_share(_masks(description, "train"))
    if painted >= SPARSE_BELOW:
        raise SettingsError(
            f"pseudo_labels fills unlabelled pixels, and {painted:.0%} of the training pixels are labelled "
            "already; leave the setting out for complete masks"
        )
    sparse = load_description(write_masks_copy(description, folder / "strokes", f"{description.name}-strokes"))
    first_only = dataclasses.replace(sparse, splits={k: v for k, v in sparse.splits.items() if k != "test"})
    first_only.save(folder / "round1.yaml")  # the first round is not tested: its time goes to training
    same = {
        "data_root": None,
        "augment": config.resolved_preset(description.name),
        "pseudo_labels": False,
        "out": str(run_dir.parent),
    }
    first = dataclasses.replace(
        config, **same, data=str(folder / "round1.yaml"), name=f"{run_dir.name}-round1", decide_cleanup=False,
        max_steps=math.ceil(config.max_steps * FIRST_ROUND) if config.max_steps else config.max_steps,
        max_minutes=config.max_minutes * FIRST_ROUND if config.max_minutes else None,
    )  # fmt: skip
    first_summary = train(first, progress=progress, callbacks=callbacks)
    if not first_summary.get("best_checkpoint"):
        return first_summary  # cancelled or no validation: nothing to fill from
    # one pass per tile, as the time of this step was measured
    predictor = Predictor.of(load_checkpoint(first_summary["best_checkpoint"]), overlap=config.val_overlap,
                             tta="none", cleanup=["off"])  # fmt: skip

    filled_masks: list[np.ndarray] = []

    def filled(split: str, image_path: Path, mask: np.ndarray) -> np.ndarray:
        if split != "train":
            return mask
        prediction = predictor.predict_array(read_image(image_path))
        confidence = prediction.probabilities.max(dim=0).values.numpy()
        filled_masks.append(fill_unlabelled(mask, prediction.raw_mask, confidence))
        return filled_masks[-1]

    full = write_masks_copy(sparse, folder / "filled", f"{description.name}-pseudo-labels", filled)
    after = labelled_share(filled_masks)
    log.info(
        f"pseudo-labels: {painted:.1%} of the training pixels painted, {after:.1%} labelled "
        f"after filling where the first round's model is at least {CONFIDENCE:.0%} sure"
    )
    spent = (time.monotonic() - started) / 60
    second = dataclasses.replace(
        config, **same, data=str(full), name=run_dir.name, init_weights=first_summary["best_checkpoint"],
        max_steps=max(config.max_steps - first.max_steps, 1) if config.max_steps else config.max_steps,
        max_minutes=max(config.max_minutes - spent, 0.1) if config.max_minutes else None,
    )  # fmt: skip
    summary = train(second, progress=progress, callbacks=callbacks)
    summary["pseudo_labels"] = {
        "first_round": first_summary["run_dir"],
        "first_round_steps": first_summary["steps"],
        "first_round_best_val_iou": first_summary["best_val_iou"],
        "labelled_before": round(painted, 4),
        "labelled_after": round(after, 4),
        "confidence": CONFIDENCE,
        "masks": str(full.parent),
    }
    write_json(RunFolder(summary["run_dir"]).summary, summary)
    return summary


def _masks(description: DatasetDescription, split: str) -> list[np.ndarray]:
    return [read_mask(mask_path, description.encoding) for _, mask_path in pair_split(description, split).pairs]

"""Splits of a dataset given as one folder pair (split ``all``): validation and test images held out by a seeded
draw, the same on every call with the same settings, so training, evaluation and the run record agree."""

from __future__ import annotations

import dataclasses

import numpy as np

from csunet.data.dataset import pair_split
from csunet.data.description import DatasetDescription, SplitFolders
from csunet.data.errors import DataError

SINGLE_SPLIT = "all"


def hold_out(
    description: DatasetDescription, val_fraction: float, test_fraction: float, seed: int
) -> DatasetDescription:
    """``description`` with its single split ``all`` divided into ``train``, ``val`` and (when ``test_fraction``
    > 0) ``test``; descriptions with a ``train`` split come back unchanged. At least one image is held out for each
    held-out split, and at least one is left for training."""
    if "train" in description.splits or SINGLE_SPLIT not in description.splits:
        return description
    names = [image.name for image, _ in pair_split(description, SINGLE_SPLIT).pairs]
    n_val = max(1, round(len(names) * val_fraction))
    n_test = max(1, round(len(names) * test_fraction)) if test_fraction > 0 else 0
    if len(names) - n_val - n_test < 1:
        raise DataError(
            f"{description.source or description.name}: {len(names)} image pairs are too few to hold out "
            f"{n_val} for validation and {n_test} for testing and still train on one; add images, or lower "
            "--val-fraction / --test-fraction"
        )
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    held = {"val": order[:n_val], "test": order[n_val : n_val + n_test], "train": order[n_val + n_test :]}
    folders = description.splits[SINGLE_SPLIT]
    splits = {name: SplitFolders(folders.images, folders.masks, tuple(sorted(files)))
              for name, files in held.items() if files}  # fmt: skip
    return dataclasses.replace(description, splits=splits)


def held_out_names(description: DatasetDescription) -> dict[str, list[str]]:
    """The image names of each split chosen by :func:`hold_out` (empty when the splits are folders)."""
    return {name: list(folders.names) for name, folders in description.splits.items() if folders.names is not None}

"""Analysis for issue 25: does test-time histogram matching undo a specimen shift without retraining?

Each image's grey levels are mapped, rank for rank, onto the training images' mean quantile function before the
checkpoint's own normalisation; evaluated on validation and test with the clean-up off, against the same
checkpoint without the mapping. Usage (checkpoints of `csunet train --task T`):

    python -m benchmarks.test_time_matching ebc-3=RUN/checkpoints/best.ckpt super-4=... [--out FILE.json]

It also prints each image's distance from the training images' mean quantile function (mean absolute difference)
and, for the training images, the largest leave-one-out distance: whether a shift could be told from the grey
levels alone. Result and verdict: benchmarks/results/test_time_matching.md.
"""

from __future__ import annotations

import argparse
import json
from contextlib import contextmanager

import numpy as np

import csunet.data.dataset as dataset_module
from csunet.data import load_description
from csunet.data.dataset import pair_split
from csunet.data.io import read_image
from csunet.evaluate import evaluate

LEVELS = np.linspace(0, 1, 1025)


def quantiles(task: str, split: str) -> list[np.ndarray]:
    description = load_description(task)
    return [np.quantile(read_image(image)[..., 0], LEVELS) for image, _ in pair_split(description, split).pairs]


def matched(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    out = np.empty(image.shape, np.float32)
    for channel in range(image.shape[-1]):
        plane = image[..., channel]
        order = np.sort(plane.ravel())
        ranks = np.searchsorted(order, plane, side="right") / order.size
        out[..., channel] = np.interp(ranks, LEVELS, reference)
    return out


@contextmanager
def matching(reference: np.ndarray):
    """Every image the datasets decode is matched to ``reference`` (analysis only: not a product setting)."""
    original = dataset_module.standardise
    dataset_module.standardise = lambda image, method: matched(original(image, method), reference)
    try:
        yield
    finally:
        dataset_module.standardise = original


def distances(task: str) -> dict:
    found = {split: quantiles(task, split) for split in ("train", "val", "test")}
    pool = np.mean(found["train"], axis=0)
    others = [
        np.mean([q for j, q in enumerate(found["train"]) if j != i], axis=0) for i in range(len(found["train"]))
    ]
    return {
        "train_leave_one_out_max": max(float(np.mean(np.abs(q - o))) for q, o in zip(found["train"], others))
        if len(found["train"]) > 1
        else None,
        **{split: [float(np.mean(np.abs(q - pool))) for q in found[split]] for split in ("val", "test")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="TASK=CHECKPOINT")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = {}
    for task, checkpoint in (run.split("=", 1) for run in args.runs):
        reference = np.mean(quantiles(task, "train"), axis=0)
        rows[task] = {"distances": distances(task)}
        for split in ("val", "test"):
            plain = evaluate(checkpoint, split=split, progress=False, cleanup=["off"])["nasa_iou"]
            with matching(reference):
                mapped = evaluate(checkpoint, split=split, progress=False, cleanup=["off"])["nasa_iou"]
            rows[task][split] = {"none": plain, "matched": mapped}
            print(f"{task} {split}: NASA IoU {plain:.3f} -> {mapped:.3f} matched", flush=True)
        print(f"{task} distances: {json.dumps(rows[task]['distances'])}", flush=True)
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()

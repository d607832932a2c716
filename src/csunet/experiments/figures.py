"""The paper's Figures 6-8: per test image, the image and its truth, then the prediction of the best run of each
weights source, coloured white TP, black TN, red FP, cyan FN (yellow: foreground of the wrong class)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from csunet.checkpoint import load_checkpoint
from csunet.data import SegmentationDataset, load_description
from csunet.data.transforms import eval_transform
from csunet.predictor import Predictor
from csunet.render import captioned_row, colour_mask, foreground_error_panel, png_bytes, to_rgb8
from csunet.scoring import denormalise
from csunet.utils import atomic_write_bytes


def best_per_source(rows: list[dict], task: str) -> dict[str, dict]:
    best: dict[str, dict] = {}
    usable = [r for r in rows if r["task"] == task and r.get("checkpoint") and r.get("nasa_iou") is not None]
    for row in usable:
        if row["weights"] not in best or row["nasa_iou"] > best[row["weights"]]["nasa_iou"]:
            best[row["weights"]] = row
    return best


def task_figures(
    rows: list[dict], task: str, out: Path, data_root: str | None = None, say: Callable = print
) -> list[Path]:
    best = best_per_source(rows, task)
    if not best:
        say(f"{task}: no finished run with a checkpoint")
        return []
    models = {source: load_checkpoint(row["checkpoint"]) for source, row in sorted(best.items())}
    first = next(iter(models.values())).meta
    description = load_description(task, data_root)
    # one dataset per per-image standardisation the models were trained with; the untouched one is shown
    datasets = {
        method: SegmentationDataset(description, "test", eval_transform(first.augment), intensity=method)
        for method in {loaded.meta.normalisation.per_image for loaded in models.values()} | {"none"}
    }
    dataset = datasets["none"]
    written = []
    for index, name in enumerate(dataset.names()):
        image, mask = dataset[index]
        truth = mask.numpy().astype(np.uint8)
        colours = next(iter(models.values())).colours
        panels = [("image", to_rgb8(denormalise(image, first))), ("truth", colour_mask(truth, colours))]
        for source, loaded in models.items():
            seen = datasets[loaded.meta.normalisation.per_image][index][0]
            predicted = Predictor(loaded).predict_tensor(seen).raw_mask
            row = best[source]
            panels.append((f"{source}: {row['model']} {row['encoder'] or ''} {100 * row['nasa_iou']:.1f}%",
                           foreground_error_panel(predicted, truth)))  # fmt: skip
        path = out / task / f"{Path(name).stem}.png"
        atomic_write_bytes(path, png_bytes(captioned_row(panels)))
        written.append(path)
    return written

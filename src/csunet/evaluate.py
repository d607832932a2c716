"""Evaluate a trained checkpoint on a dataset split: NASA IoU, per-class IoU, mIoU, per-image values, and the
paper's error panels on request."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from rich.progress import track

from csunet.checkpoint import LoadedCheckpoint, per_image_intensity
from csunet.data import SegmentationDataset, load_description
from csunet.data.holdout import hold_out
from csunet.data.transforms import eval_transform
from csunet.errors import SettingsError
from csunet.export import load_engine
from csunet.inference import default_device, sliding_window_logits
from csunet.metrics import ConfusionMatrix, NasaIoU, iou_summary, nasa_iou, predicted_classes
from csunet.render import captioned_row, colour_mask, error_panel, png_bytes, to_rgb8
from csunet.utils import atomic_write_bytes, keep_freed_memory, writable_folder


def denormalise(image: torch.Tensor, meta: dict) -> np.ndarray:
    """A normalised (C, H, W) tensor back to a displayable (H, W, C) float image in [0, 1]."""
    mean = torch.tensor(meta["normalisation"]["mean"])[:, None, None]
    std = torch.tensor(meta["normalisation"]["std"])[:, None, None]
    return (image.cpu() * std + mean).permute(1, 2, 0).numpy()


def error_figure(
    image: np.ndarray, truth: np.ndarray, predicted: np.ndarray, classes, colours, background: int | None = 0
) -> np.ndarray:
    """Image, truth, prediction, then one error panel per class but the background (every class when there is
    no other)."""
    panels = [
        ("image", to_rgb8(image)),
        ("truth", colour_mask(truth, colours)),
        ("prediction", colour_mask(predicted, colours)),
    ]
    shown = [c for c in range(len(classes)) if c != background] or list(range(len(classes)))
    panels += [(f"{classes[c]}: TP white, FP red, FN cyan", error_panel(predicted, truth, c)) for c in shown]
    return captioned_row(panels)


@torch.no_grad()
def evaluate_model(
    loaded: LoadedCheckpoint,
    dataset: SegmentationDataset,
    overlap: float = 0.5,
    tta: str = "none",
    batch_size: int = 4,
    figures: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict:
    """Metrics of ``loaded`` on every image of ``dataset`` (an eval-transformed SegmentationDataset)."""
    meta, classes = loaded.meta, loaded.classes
    # one process evaluates everything, even right after a multi-process training run: no syncing
    nasa, confusion = (
        NasaIoU(meta["activation"], sync_on_compute=False),
        ConfusionMatrix(len(classes), sync_on_compute=False),
    )
    per_image = []
    names = dataset.names()
    steps = track(range(len(dataset)), description="evaluating") if progress else range(len(dataset))
    for index in steps:
        image, mask = dataset[index]
        logits = sliding_window_logits(loaded.model, image, meta["tile_size"], overlap, batch_size, tta, "cpu")[
            None
        ]
        nasa.update(logits, mask[None])
        confusion.update(logits, mask[None])
        per_image.append(
            {
                "image": names[index],
                "nasa_iou": float(nasa_iou(logits, mask[None], activation=meta["activation"])[0]),
            }
        )
        if figures is not None:
            predicted = predicted_classes(logits)[0].numpy().astype(np.uint8)
            figure = error_figure(
                denormalise(image, meta),
                mask.numpy().astype(np.uint8),
                predicted,
                classes,
                loaded.colours,
                meta.get("background", 0),
            )
            atomic_write_bytes(Path(figures) / f"{Path(names[index]).stem}_panel.png", png_bytes(figure))
    summary = iou_summary(nasa.compute(), confusion.compute(), classes, meta.get("background", 0))
    summary["per_image"] = per_image
    summary["images"] = len(per_image)
    return summary


def evaluate(
    checkpoint: str | os.PathLike,
    data: str | None = None,
    split: str = "test",
    data_root: str | os.PathLike | None = None,
    overlap: float = 0.5,
    tta: str = "none",
    batch_size: int = 4,
    figures: str | os.PathLike | None = None,
    device: str | None = None,
    progress: bool = True,
    engine: str = "torch",
) -> dict:
    """Load ``checkpoint`` and evaluate it on ``split`` of ``data`` (default: the data it was trained on), run by
    ``engine`` (:func:`csunet.export.load_engine`; default the checkpoint in PyTorch, fp32 even on a GPU, as
    trained)."""
    if figures is not None:
        writable_folder(figures, "error panels")
    keep_freed_memory()
    loaded = load_engine(checkpoint, engine, device or default_device(), bf16=False)
    dataset = checkpoint_dataset(loaded, checkpoint, data, split, data_root)
    result = evaluate_model(loaded, dataset, overlap, tta, batch_size, figures, progress)
    result.update({"checkpoint": str(checkpoint), "data": dataset.description.name, "split": split, "tta": tta,
                   "engine": loaded.engine})  # fmt: skip
    return result


def checkpoint_dataset(
    loaded: LoadedCheckpoint,
    checkpoint: str | os.PathLike,
    data: str | None = None,
    split: str = "test",
    data_root: str | os.PathLike | None = None,
) -> SegmentationDataset:
    """``split`` of ``data`` (default: the data the checkpoint was trained on, with the same held-out images),
    transformed for evaluation as the checkpoint's training data was."""
    meta = loaded.meta
    recipe = meta.get("recipe") or {}
    if data is None and "data" not in recipe:
        raise SettingsError(f"{checkpoint}: it does not record its training data; say which with --task or --data")
    data = data or recipe["data"]
    data_root = data_root or recipe.get("data_root")
    # data given as one folder pair: the same held-out images as in training (older checkpoints held out no test)
    description = hold_out(load_description(data, data_root), recipe.get("val_fraction", 0.2),
                           recipe.get("test_fraction", 0.0), recipe.get("seed", 0))  # fmt: skip
    if description.classes != loaded.classes:
        raise SettingsError(
            f"{checkpoint}: trained for classes {loaded.classes}, but {description.name} has {description.classes}"
        )
    return SegmentationDataset(
        description, split, eval_transform(meta["augment"]), meta["channels"], intensity=per_image_intensity(meta)
    )

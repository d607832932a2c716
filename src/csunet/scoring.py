"""Scoring a loaded model on a dataset split, the building block under `csunet evaluate`, training's end and the
int8 export's accuracy check: NASA IoU, per-class IoU, mIoU, per-image values, the masks' agreement with the truth's
measurements, and the paper's error panels on request."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from rich.progress import track

from csunet.checkpoint import CheckpointMeta, LoadedCheckpoint
from csunet.cleanup import CleanupRules
from csunet.data import SegmentationDataset, load_description
from csunet.data.holdout import hold_out
from csunet.data.masks import IGNORE_INDEX
from csunet.data.transforms import eval_transform
from csunet.errors import SettingsError
from csunet.inference import DEFAULT_TTA
from csunet.metrics import ConfusionMatrix, NasaIoU, iou_summary, mask_mean_iou, nasa_iou
from csunet.morphometry import MeasureSettings, agreement
from csunet.predictor import Predictor
from csunet.render import captioned_row, colour_mask, error_panel, png_bytes, to_rgb8
from csunet.utils import atomic_write_bytes


def denormalise(image: torch.Tensor, meta: CheckpointMeta) -> np.ndarray:
    """A normalised (C, H, W) tensor back to a displayable (H, W, C) float image in [0, 1]."""
    mean = torch.tensor(meta.normalisation.mean)[:, None, None]
    std = torch.tensor(meta.normalisation.std)[:, None, None]
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
    tta: str = DEFAULT_TTA,
    batch_size: int = 4,
    figures: str | os.PathLike | None = None,
    progress: bool = True,
    cleanup: CleanupRules | None = None,
    keep_masks: bool = False,
) -> dict:
    """Metrics of ``loaded`` on every image of ``dataset`` (an eval-transformed SegmentationDataset): the model's
    IoU (from its outputs), and of the masks users get (after ``cleanup``) their IoU and how far their measurements
    are from the truth's. ``keep_masks``: also return the truth, the masks as predicted and the logits (float16),
    by image name."""
    meta, classes = loaded.meta, loaded.classes
    truths, predictions, cleaned, kept_logits = {}, {}, {}, {}
    predictor = Predictor(loaded, overlap, tta, batch_size, cleanup)
    # one process evaluates everything, even right after a multi-process training run: no syncing
    nasa, confusion = (
        NasaIoU(meta.activation, sync_on_compute=False),
        ConfusionMatrix(len(classes), sync_on_compute=False),
    )
    per_image = []
    names = dataset.names()
    steps = track(range(len(dataset)), description="evaluating") if progress else range(len(dataset))
    for index in steps:
        image, mask = dataset[index]
        prediction = predictor.predict_tensor(image)
        logits = prediction.logits[None]
        nasa.update(logits, mask[None])
        confusion.update(logits, mask[None])
        per_image.append(
            {
                "image": names[index],
                "nasa_iou": float(nasa_iou(logits, mask[None], activation=meta.activation)[0]),
            }
        )
        name = names[index]
        truths[name], predictions[name] = mask.numpy().astype(np.uint8), prediction.raw_mask
        cleaned[name] = prediction.mask
        if keep_masks:
            kept_logits[name] = prediction.logits.half()
        if figures is not None:
            figure = error_figure(
                denormalise(image, meta),
                truths[name],
                prediction.mask,
                classes,
                loaded.colours,
                meta.background,
            )
            atomic_write_bytes(Path(figures) / f"{Path(names[index]).stem}_panel.png", png_bytes(figure))
    summary = iou_summary(nasa.compute(), confusion.compute(), classes, meta.background)
    summary["per_image"] = per_image
    summary["images"] = len(per_image)
    summary["tta"] = predictor.tta_mode
    summary |= mask_metrics(truths, predictions, cleaned, meta, cleanup)
    if keep_masks:
        summary["masks"] = {"truth": truths, "predicted": predictions, "logits": kept_logits}
    return summary


def measure_settings(meta: CheckpointMeta) -> MeasureSettings:
    """How a checkpoint's masks are measured in evaluation: its classes, kinds by name, pixels as the unit."""
    return MeasureSettings(meta.classes, background=meta.background)


def mask_metrics(
    truths: dict[str, np.ndarray],
    predictions: dict[str, np.ndarray],
    cleaned: dict[str, np.ndarray],
    meta: CheckpointMeta,
    cleanup: CleanupRules | None,
) -> dict:
    """Of the masks users get (``cleaned``: the ``predictions`` after ``cleanup``): mean IoU, and the agreement of
    their measurements with the truth's (:func:`csunet.morphometry.agreement`); with clean-up also both as
    predicted. Pixels the truth leaves unlabelled are left out of both."""
    settings = measure_settings(meta)

    def labelled(masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: np.where(truths[name] == IGNORE_INDEX, IGNORE_INDEX, mask) for name, mask in masks.items()}

    predictions, cleaned = labelled(predictions), labelled(cleaned)
    count = len(settings.classes)
    result = {
        "cleanup": cleanup.describe() if cleanup else "none",
        "mask_miou": mask_mean_iou(list(truths.values()), list(cleaned.values()), count),
        "measurement_agreement": agreement(truths, cleaned, settings),
    }
    if cleanup is not None and cleanup.active():
        result["mask_miou_without_cleanup"] = mask_mean_iou(
            list(truths.values()), list(predictions.values()), count
        )
        result["measurement_agreement_without_cleanup"] = agreement(truths, predictions, settings)
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
    recipe = meta.recipe
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
        description, split, eval_transform(meta.augment), meta.channels, intensity=meta.normalisation.per_image
    )

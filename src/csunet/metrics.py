"""Segmentation metrics, named for what they are.

- ``nasa_iou``: NASA's benchmark number (SPEC 1.6): per image, sigmoid outputs thresholded at 0.5 (for softmax
  models: the one-hot arg-max) against the one-hot mask, intersections summed over all output channels divided by unions summed likewise, then averaged
  over images. With a single-channel (binary) model it is the foreground IoU alone.
- ``per_class_iou`` / ``mean_iou_without_background``: the usual confusion-matrix IoU of arg-max predictions over
  all pixels of a dataset.
Pixels marked ``IGNORE_INDEX`` count in none of them.

``NasaIoU`` and ``ConfusionMatrix`` are torchmetrics ``Metric`` objects, so with several processes (DDP) their
states are summed over all of them before a value is computed: every process reports the same, correct number.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric

from csunet.data.masks import IGNORE_INDEX


def one_hot_target(target: torch.Tensor, channels: int) -> torch.Tensor:
    """(B, H, W) class indices -> (B, C, H, W) float one-hot; with C = 1 the channel is class 1 (binary)."""
    valid = target != IGNORE_INDEX
    safe = torch.where(valid, target, torch.zeros_like(target))
    if channels == 1:
        return (safe == 1).unsqueeze(1).float()
    return torch.nn.functional.one_hot(safe, channels).permute(0, 3, 1, 2).float()


def predicted_channels(logits: torch.Tensor, activation: str = "sigmoid", threshold: float = 0.5) -> torch.Tensor:
    """(B, C, H, W) 0/1 predictions as the model's loss defines them: each sigmoid channel above ``threshold``
    (NASA's models), or the one-hot arg-max of a softmax model (its channels compete; a sigmoid of each would
    count a pixel for several classes, or none)."""
    if activation == "softmax" and logits.shape[1] > 1:
        return torch.nn.functional.one_hot(logits.argmax(dim=1), logits.shape[1]).permute(0, 3, 1, 2).float()
    if activation not in ("sigmoid", "softmax"):
        raise ValueError(f"unknown activation {activation!r}; expected sigmoid or softmax")
    return (torch.sigmoid(logits) > threshold).float()


def nasa_iou(
    logits: torch.Tensor, target: torch.Tensor, threshold: float = 0.5, activation: str = "sigmoid"
) -> torch.Tensor:
    """NASA's pooled IoU of each image in the batch: shape (B,). ``activation`` is the model's (its loss's)."""
    predicted = predicted_channels(logits, activation, threshold)
    truth = one_hot_target(target, logits.shape[1])
    valid = (target != IGNORE_INDEX).unsqueeze(1).float()
    predicted, truth = predicted * valid, truth * valid
    intersection = (predicted * truth).sum(dim=(1, 2, 3))
    union = (predicted + truth - predicted * truth).sum(dim=(1, 2, 3))
    return torch.where(union > 0, intersection / union.clamp_min(1), torch.ones_like(union))


def predicted_classes(logits: torch.Tensor) -> torch.Tensor:
    """Class indices from logits: arg-max, or sigmoid > 0.5 for a single-channel binary model."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(dim=1)


def confusion_matrix(predicted: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) counts, rows = truth, columns = prediction, ignoring ``IGNORE_INDEX`` pixels."""
    valid = target != IGNORE_INDEX
    index = target[valid] * num_classes + predicted[valid]
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def masks_confusion(truth: list[np.ndarray], predicted: list[np.ndarray], num_classes: int) -> torch.Tensor:
    """(K, K) counts over pairs of index masks (the masks users get, after any clean-up)."""
    total = torch.zeros(num_classes, num_classes, dtype=torch.long)
    for target, mask in zip(truth, predicted, strict=True):
        total += confusion_matrix(torch.from_numpy(mask.astype(np.int64)), torch.from_numpy(target.astype(np.int64)),
                                  num_classes)  # fmt: skip
    return total


def mask_mean_iou(truth: list[np.ndarray], predicted: list[np.ndarray], num_classes: int) -> float:
    """Mean IoU over every class (absent ones skipped) of index masks against their truth."""
    return float(torch.nanmean(per_class_iou(masks_confusion(truth, predicted, num_classes))))


def per_class_iou(confusion: torch.Tensor) -> torch.Tensor:
    """IoU per class from a confusion matrix; NaN for a class absent from both truth and prediction."""
    confusion = confusion.double()
    intersection = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - intersection
    return torch.where(union > 0, intersection / union.clamp_min(1), torch.full_like(union, float("nan")))


def mean_iou_without_background(confusion: torch.Tensor, background: int | None = 0) -> float:
    """Mean of the per-class IoUs of every class but ``background`` (the matrix; None: all classes), skipping
    classes absent from both truth and prediction."""
    values = per_class_iou(confusion)
    keep = [i for i in range(len(values)) if i != background]
    return float(torch.nanmean(values[keep]))


class NasaIoU(Metric):
    """Mean over images of NASA's pooled IoU (see :func:`csunet.metrics.nasa_iou`)."""

    full_state_update = False

    def __init__(self, activation: str = "sigmoid", **kwargs) -> None:
        super().__init__(**kwargs)
        self.activation = activation
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("images", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        values = nasa_iou(logits, target, activation=self.activation)
        self.total += values.sum().double()
        self.images += values.numel()

    def compute(self) -> torch.Tensor:
        return self.total / self.images.clamp_min(1)


class ConfusionMatrix(Metric):
    """(K, K) pixel counts, rows = truth, columns = prediction; ignored pixels left out."""

    full_state_update = False

    def __init__(self, num_classes: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.add_state("counts", torch.zeros(num_classes, num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        self.counts += confusion_matrix(predicted_classes(logits), target, self.num_classes)

    def compute(self) -> torch.Tensor:
        return self.counts


def iou_summary(nasa: float, confusion: torch.Tensor, classes: list[str], background: int | None = 0) -> dict:
    """The metrics we report, as plain numbers: NASA IoU, per-class IoU, mean IoU without background."""
    per_class = per_class_iou(confusion)
    return {
        "nasa_iou": float(nasa),
        "miou_without_background": mean_iou_without_background(confusion, background),
        "per_class_iou": {name: float(value) for name, value in zip(classes, per_class)},
        "confusion": confusion.tolist(),
    }

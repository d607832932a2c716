"""Segmentation metrics, named for what they are.

- ``nasa_iou``: NASA's benchmark number (SPEC 1.6): per image, sigmoid outputs thresholded at 0.5 against the
  one-hot mask, intersections summed over all output channels divided by unions summed likewise, then averaged
  over images. With a single-channel (binary) model it is the foreground IoU alone.
- ``per_class_iou`` / ``mean_iou_without_background``: the usual confusion-matrix IoU of arg-max predictions over
  all pixels of a dataset.
Pixels marked ``IGNORE_INDEX`` count in none of them.
"""

from __future__ import annotations

import torch

from csunet.data.masks import IGNORE_INDEX


def one_hot_target(target: torch.Tensor, channels: int) -> torch.Tensor:
    """(B, H, W) class indices -> (B, C, H, W) float one-hot; with C = 1 the channel is class 1 (binary)."""
    valid = target != IGNORE_INDEX
    safe = torch.where(valid, target, torch.zeros_like(target))
    if channels == 1:
        return (safe == 1).unsqueeze(1).float()
    return torch.nn.functional.one_hot(safe, channels).permute(0, 3, 1, 2).float()


def nasa_iou(logits: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """NASA's pooled IoU of each image in the batch: shape (B,)."""
    predicted = (torch.sigmoid(logits) > threshold).float()
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


def per_class_iou(confusion: torch.Tensor) -> torch.Tensor:
    """IoU per class from a confusion matrix; NaN for a class absent from both truth and prediction."""
    confusion = confusion.double()
    intersection = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - intersection
    return torch.where(union > 0, intersection / union.clamp_min(1), torch.full_like(union, float("nan")))


def mean_iou_without_background(confusion: torch.Tensor) -> float:
    """Mean of the per-class IoUs of classes 1..K-1 (class 0 is background/matrix), skipping absent classes."""
    return float(torch.nanmean(per_class_iou(confusion)[1:]))

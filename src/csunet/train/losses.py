"""Training losses. The paper's (NASA's recipe) is ``bce-dice``: 0.7 x BCE + 0.3 x Dice on sigmoid outputs against
one-hot masks, the Dice pooled over every class's pixels. Micrographs are imbalanced (Super's tertiary phase ~2.5 %
of pixels, EBC's cracks ~0.3 %), so the pooled Dice barely notices a rare class; ``bce-class-dice`` averages one
Dice per class instead; cross-entropy, focal and Tversky losses are offered too. Every loss takes class weights,
given or derived from the masks (:func:`derived_class_weights`).

Every loss ignores pixels labelled ``IGNORE_INDEX`` (partial labels).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from csunet.data.masks import IGNORE_INDEX
from csunet.errors import SettingsError
from csunet.metrics import one_hot_target
from csunet.train.recipes import LOSSES, RARE_SHARE


class BCEDiceLoss(nn.Module):
    """``bce_weight * BCE + dice_weight * (1 - Dice)``, Dice with additive ``smooth`` over all pixels and channels,
    or with ``per_class`` the mean of one Dice per channel (each over the batch's pixels).

    ``class_weights`` (one per class) weigh each pixel's BCE by its true class, as weighted cross-entropy does, and
    the per-class Dice terms by their channel's class (channel ``c`` is class ``c``; a single channel is class 1)."""

    def __init__(
        self,
        bce_weight: float = 0.7,
        dice_weight: float = 0.3,
        smooth: float = 1.0,
        per_class: bool = False,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.bce_weight, self.dice_weight, self.smooth = bce_weight, dice_weight, smooth
        self.per_class = per_class
        weights = None if class_weights is None else torch.tensor(list(class_weights), dtype=torch.float32)
        self.register_buffer("class_weights", weights, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        truth = one_hot_target(target, logits.shape[1])
        labelled = target != IGNORE_INDEX
        pixel_weight = labelled.float()
        if self.class_weights is not None:
            pixel_weight = pixel_weight * self.class_weights[torch.where(labelled, target, 0)]
        valid = labelled.unsqueeze(1).expand_as(logits).float()
        weight = pixel_weight.unsqueeze(1).expand_as(logits)
        bce = F.binary_cross_entropy_with_logits(logits, truth, weight=weight, reduction="sum")
        bce = bce / weight.sum().clamp_min(1e-8)
        probs = torch.sigmoid(logits) * valid
        truth = truth * valid
        summed = (0, 2, 3) if self.per_class else (0, 1, 2, 3)  # keep the channel axis: one Dice per class
        intersection = (probs * truth).sum(summed)
        dice = (2 * intersection + self.smooth) / (probs.sum(summed) + truth.sum(summed) + self.smooth)
        if self.per_class and self.class_weights is not None:
            channel_weights = self.class_weights[-logits.shape[1] :]  # one channel: the foreground class
            loss_dice = ((1 - dice) * channel_weights).sum() / channel_weights.sum()
        else:
            loss_dice = 1 - dice.mean()
        return self.bce_weight * bce + self.dice_weight * loss_dice


class _WeightedLoss(nn.Module):
    def __init__(self, class_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        weights = None if class_weights is None else torch.tensor(list(class_weights), dtype=torch.float32)
        self.register_buffer("class_weights", weights, persistent=False)


class CrossEntropyLoss(_WeightedLoss):
    """Softmax cross-entropy, optionally class-weighted (mean over labelled pixels, weighted as torch does)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not (target != IGNORE_INDEX).any():
            return logits.sum() * 0
        return F.cross_entropy(logits, target, weight=self.class_weights, ignore_index=IGNORE_INDEX)


class FocalLoss(_WeightedLoss):
    """Focal loss (Lin et al. 2017): cross-entropy scaled by ``(1 - p_true) ** gamma`` so easy pixels count less."""

    def __init__(self, class_weights: Sequence[float] | None = None, gamma: float = 2.0) -> None:
        super().__init__(class_weights)
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = target != IGNORE_INDEX
        safe = torch.where(valid, target, torch.zeros_like(target))
        log_p = F.log_softmax(logits, dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)
        loss = -((1 - log_p.exp()) ** self.gamma) * log_p
        weight = valid.float()
        if self.class_weights is not None:
            weight = weight * self.class_weights[safe]
        return (loss * weight).sum() / weight.sum().clamp_min(1e-8)


class TverskyLoss(_WeightedLoss):
    """1 - Tversky index per class (softmax), ``alpha`` weighting false positives and ``beta`` false negatives;
    beta > alpha favours recall of small classes. Classes are averaged with the class weights."""

    def __init__(
        self,
        class_weights: Sequence[float] | None = None,
        alpha: float = 0.3,
        beta: float = 0.7,
        smooth: float = 1.0,
    ) -> None:
        super().__init__(class_weights)
        self.alpha, self.beta, self.smooth = alpha, beta, smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = (target != IGNORE_INDEX).unsqueeze(1).float()
        probs = torch.softmax(logits, dim=1) * valid
        truth = one_hot_target(target, logits.shape[1]) * valid
        dims = (0, 2, 3)
        true_pos = (probs * truth).sum(dims)
        false_pos = (probs * (1 - truth)).sum(dims)
        false_neg = ((1 - probs) * truth).sum(dims)
        index = (true_pos + self.smooth) / (
            true_pos + self.alpha * false_pos + self.beta * false_neg + self.smooth
        )
        weights = torch.ones_like(index) if self.class_weights is None else self.class_weights
        return ((1 - index) * weights).sum() / weights.sum()


def build_loss(name: str, class_weights: Sequence[float] | None = None) -> nn.Module:
    if name not in LOSSES:
        raise SettingsError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    if name in ("bce-dice", "bce-class-dice"):
        return BCEDiceLoss(per_class=name == "bce-class-dice", class_weights=class_weights)
    return {"ce": CrossEntropyLoss, "focal": FocalLoss, "tversky": TverskyLoss}[name](class_weights)


def class_frequencies(masks: Iterable[np.ndarray], num_classes: int) -> np.ndarray:
    """Fraction of labelled pixels in each class over all ``masks`` (ignored pixels left out)."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for mask in masks:
        values = mask[mask != IGNORE_INDEX]
        counts += np.bincount(values.ravel(), minlength=num_classes)[:num_classes]
    return counts / max(int(counts.sum()), 1)


def inverse_frequency_weights(frequencies: np.ndarray, temperature: float = 1.0) -> list[float]:
    """``(median frequency / class frequency) ** temperature``: at temperature 1 median-frequency balancing (Eigen &
    Fergus 2015), lower temperatures temper it as the class-centred crops are tempered (``train/sampling.py``).

    A class absent from the masks gets the largest weight of the present ones (it cannot be learnt from them).
    """
    present = frequencies > 0
    if not present.any():
        raise SettingsError("the training masks contain no labelled pixels")
    median = float(np.median(frequencies[present]))
    weights = np.where(present, median / np.where(present, frequencies, 1), 0.0) ** temperature
    weights[~present] = weights[present].max()
    return [round(float(w), 6) for w in weights]


def rare_classes(frequencies: np.ndarray) -> list[int]:
    """The classes present that hold less than ``RARE_SHARE`` of the labelled pixels."""
    return [int(c) for c in np.flatnonzero((frequencies > 0) & (frequencies < RARE_SHARE))]


def derived_class_weights(setting: str, frequencies: np.ndarray, temperature: float) -> list[float] | None:
    """``auto``: :func:`inverse_frequency_weights`; ``rare``: the same when :func:`rare_classes` finds one, else
    None (no weighting)."""
    if setting == "rare" and not rare_classes(frequencies):
        return None
    return inverse_frequency_weights(frequencies, temperature)

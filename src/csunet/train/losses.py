"""The paper's loss (NASA's recipe): 0.7 x BCE + 0.3 x Dice on sigmoid outputs against one-hot masks."""

from __future__ import annotations

import torch
from torch import nn

from csunet.data.masks import IGNORE_INDEX
from csunet.metrics import one_hot_target


class BCEDiceLoss(nn.Module):
    """``bce_weight * BCE + dice_weight * (1 - Dice)``, Dice with additive ``smooth`` over all pixels and channels.

    Pixels labelled ``IGNORE_INDEX`` contribute to neither term (partial labels).
    """

    def __init__(self, bce_weight: float = 0.7, dice_weight: float = 0.3, smooth: float = 1.0) -> None:
        super().__init__()
        self.bce_weight, self.dice_weight, self.smooth = bce_weight, dice_weight, smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        truth = one_hot_target(target, logits.shape[1])
        valid = (target != IGNORE_INDEX).unsqueeze(1).expand_as(logits).float()
        count = valid.sum().clamp_min(1)
        bce = nn.functional.binary_cross_entropy_with_logits(logits, truth, weight=valid, reduction="sum") / count
        probs = torch.sigmoid(logits) * valid
        truth = truth * valid
        intersection = (probs * truth).sum()
        dice = (2 * intersection + self.smooth) / (probs.sum() + truth.sum() + self.smooth)
        return self.bce_weight * bce + self.dice_weight * (1 - dice)

"""Which crops training sees: every class its share, whatever its pixel count, and more of a class the model does
not yet predict.

Small crops of large micrographs rarely hold a scarce phase, and a model that never sees one learns never to
predict it. A share ``class_crops`` of the crops is therefore centred on a pixel of one class other than the
background, the class drawn with probability proportional to ``frequency ** -temperature`` (its share of the
labelled training pixels; temperature 0: every class equally often, 1: inversely to its pixel count), the image
in proportion to that class's pixels in it. After every validation, a class that occurs in the validation masks but
was never predicted gets twice its weight for the epochs that follow (at most three quarters of the class-centred
crops, unless it is the only class). The sampler runs in the main process, so that change reaches every worker.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch.utils.data import Sampler

from csunet.data.masks import IGNORE_INDEX

BOOST = 2.0
"""Weight factor for a class never predicted on validation."""
MAX_BOOSTED_SHARE = 0.75
"""A boosted class takes at most this share of the class-centred crops (when there are other classes)."""
RANDOM_CROP = -1
"""The class slot of a crop drawn uniformly, not centred on a class."""


@dataclass
class ClassShares:
    """How class-centred crops are shared out among the classes other than the background."""

    names: list[str]
    classes: list[int]
    frequencies: list[float]
    """Share of the labelled training pixels, per class in ``classes``."""
    weights: list[float]
    images: dict[int, tuple[np.ndarray, np.ndarray]]
    """Class -> (indices of the training images holding it, its pixel count in each)."""
    boosted: dict[str, int] = field(default_factory=dict)
    """Class name -> how often it was boosted."""

    @classmethod
    def from_masks(
        cls, masks: Sequence[np.ndarray], names: Sequence[str], background: int | None, temperature: float
    ) -> ClassShares:
        counts = np.zeros((len(masks), len(names)), dtype=np.int64)
        for index, mask in enumerate(masks):
            values = mask[mask != IGNORE_INDEX]
            counts[index] = np.bincount(values.ravel(), minlength=len(names))[: len(names)]
        totals = counts.sum(axis=0)
        labelled = max(int(totals.sum()), 1)
        classes = [c for c in range(len(names)) if c != background and totals[c] > 0]
        frequencies = [float(totals[c] / labelled) for c in classes]
        return cls(
            names=[names[c] for c in classes],
            classes=classes,
            frequencies=frequencies,
            weights=[f**-temperature for f in frequencies],
            images={c: (np.flatnonzero(counts[:, c]), counts[counts[:, c] > 0, c]) for c in classes},
        )

    @property
    def shares(self) -> list[float]:
        total = sum(self.weights)
        return [w / total for w in self.weights]

    def boost(self, name: str) -> tuple[float, float]:
        """Double ``name``'s weight, up to ``MAX_BOOSTED_SHARE`` of the crops; its (share before, share after)."""
        position = self.names.index(name)
        before = self.shares[position]
        others = sum(self.weights) - self.weights[position]
        limit = (
            self.weights[position] * BOOST
            if not others
            else max(self.weights[position], others * MAX_BOOSTED_SHARE / (1 - MAX_BOOSTED_SHARE))
        )
        self.weights[position] = min(self.weights[position] * BOOST, limit)
        self.boosted[name] = self.boosted.get(name, 0) + 1
        return before, self.shares[position]

    def describe(self) -> str:
        return ", ".join(
            f"{name} {share:.2f} ({frequency:.2%} of the pixels)"
            for name, share, frequency in zip(self.names, self.shares, self.frequencies)
        )


class CropSampler(Sampler):
    """``length`` crops per epoch as (image index, class to centre on or ``RANDOM_CROP``): a share
    ``class_crops`` centred on classes as ``shares`` says, the rest uniformly random crops of the images taken in
    shuffled turns."""

    def __init__(self, num_images: int, length: int, class_crops: float, shares: ClassShares | None) -> None:
        self.num_images, self.length, self.class_crops, self.shares = num_images, length, class_crops, shares

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = np.random.default_rng(int(torch.randint(2**31 - 1, ()).item()))  # follows seed_everything
        centred = self.class_crops > 0 and self.shares is not None and self.shares.classes
        order: list[int] = []
        for _ in range(self.length):
            if centred and generator.random() < self.class_crops:
                target = int(generator.choice(self.shares.classes, p=self.shares.shares))
                images, pixels = self.shares.images[target]
                yield int(generator.choice(images, p=pixels / pixels.sum())), target
                continue
            if not order:
                order = generator.permutation(self.num_images).tolist()
            yield order.pop(), RANDOM_CROP


class NeverPredictedFeedback(L.Callback):
    """After each validation, a class present in the validation masks that the model never predicted gets more of
    the class-centred crops (``ClassShares.boost``), said on the console."""

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        sampler = getattr(trainer.datamodule, "crop_sampler", None)
        confusion = getattr(module, "last_val_confusion", None)
        if trainer.sanity_checking or confusion is None or sampler is None or not sampler.class_crops:
            return
        shares = sampler.shares
        if shares is None:
            return
        for name, index in zip(list(shares.names), shares.classes):
            if index < len(confusion) and confusion[index].sum() > 0 and confusion[:, index].sum() == 0:
                before, after = shares.boost(name)
                change = f"{before:.2f} -> {after:.2f}" if after > before else f"{after:.2f}, the most it gets"
                rank_zero_info(
                    f"{name} was never predicted on validation after epoch {trainer.current_epoch}: its share of "
                    f"the class-centred crops {change}"
                )

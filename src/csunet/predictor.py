"""One predictor for every caller (`predict`, `evaluate`, the paper's figures, napari): a loaded engine with its
tiling, test-time augmentation and clean-up, giving for an image of any size the logits, the mask as predicted, the
cleaned mask, and on demand the class probabilities and the uncertainty."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from csunet.checkpoint import CheckpointMeta, LoadedCheckpoint
from csunet.cleanup import CleanupRules, clean, overridden, rules_from_meta
from csunet.data.errors import DataError
from csunet.data.intensity import standardise
from csunet.data.scale import resample_tensor, scaled_size
from csunet.data.transforms import symmetric_tta
from csunet.inference import DEFAULT_TTA, check_overlap, check_tta, sliding_window_logits
from csunet.metrics import predicted_classes

STRIP_ROWS = 256
"""Rows turned into mask and overlay at a time: full-size temporaries (int64 arg-max, float blends) never exist."""


def normalised_tensor(image: np.ndarray, meta: CheckpointMeta) -> torch.Tensor:
    """(H, W, C) float image in [0, 1] -> (C, H, W) tensor normalised as in training (the checkpoint's per-image
    standardisation first), over the whole image at once.

    Filled one channel at a time, so a huge image needs no full-size temporaries beyond the result.
    """
    channels = meta.channels
    if image.shape[-1] not in (1, channels):
        raise DataError(f"image has {image.shape[-1]} channels, the model takes {channels}")
    mean, std = meta.normalisation.mean, meta.normalisation.std
    image = standardise(image, meta.normalisation.per_image)
    tensor = torch.empty(channels, *image.shape[:2])
    for channel in range(channels):
        plane = image[..., channel if image.shape[-1] > 1 else 0]
        tensor[channel] = torch.from_numpy(np.subtract(plane, mean[channel], dtype=np.float32)).div_(std[channel])
    return tensor


def class_probabilities(logits: torch.Tensor, activation: str) -> torch.Tensor:
    """(K, H, W) probabilities as the training loss defines them (sigmoid per class, or softmax); a binary
    model's single channel p becomes the two planes 1 - p, p."""
    if logits.shape[0] == 1:
        foreground = torch.sigmoid(logits)
        return torch.cat([1 - foreground, foreground])
    return torch.sigmoid(logits) if activation == "sigmoid" else torch.softmax(logits, dim=0)


def normalised_entropy(probabilities: torch.Tensor) -> torch.Tensor:
    """Entropy of the class distribution at each pixel divided by log K: 0 = certain, 1 = undecided."""
    p = probabilities / probabilities.sum(0, keepdim=True).clamp_min(1e-12)
    entropy = -(p * p.clamp_min(1e-12).log()).sum(0)
    return entropy / np.log(max(p.shape[0], 2))


def class_mask(logits: torch.Tensor) -> np.ndarray:
    """(H, W) uint8 class indices of (K, H, W) logits, the arg-max (a binary model's channel above 0)."""
    mask = np.empty(logits.shape[1:], dtype=np.uint8)
    for top in range(0, mask.shape[0], STRIP_ROWS):
        mask[top : top + STRIP_ROWS] = predicted_classes(logits[None, :, top : top + STRIP_ROWS])[0].numpy()
    return mask


@dataclass
class Prediction:
    """What a predictor makes of one image: (K, H, W) logits, the arg-max mask as the model predicts it, and the
    mask users get (after the clean-up: its logit offsets, then its rules); probabilities and uncertainty (of the
    logits as the model gives them) computed when first asked for."""

    logits: torch.Tensor
    raw_mask: np.ndarray
    mask: np.ndarray
    activation: str

    @cached_property
    def probabilities(self) -> torch.Tensor:
        return class_probabilities(self.logits, self.activation)

    @cached_property
    def uncertainty(self) -> np.ndarray:
        return normalised_entropy(self.probabilities).numpy().astype(np.float32)


@dataclass
class Predictor:
    """A loaded engine (:func:`csunet.export.load_engine`) with how to tile (``overlap``, ``batch_size``), augment
    (``tta``) and clean (``cleanup``: the checkpoint's rules unless given) its predictions."""

    loaded: LoadedCheckpoint
    overlap: float = 0.5
    tta: str = DEFAULT_TTA
    batch_size: int = 4
    cleanup: CleanupRules | None = field(default=None)

    def __post_init__(self) -> None:
        check_overlap(self.overlap)
        check_tta(self.tta)

    @property
    def tta_mode(self) -> str:
        """The test-time augmentation run: ``auto`` resolved by the checkpoint's augmentation preset."""
        return symmetric_tta(self.meta.augment) if self.tta == "auto" else self.tta

    @classmethod
    def of(
        cls, loaded: LoadedCheckpoint, overlap: float = 0.5, tta: str = DEFAULT_TTA, batch_size: int = 4,
        cleanup: list[str] | None = None,
    ) -> Predictor:  # fmt: skip
        """A predictor whose clean-up is the checkpoint's, changed by ``cleanup`` settings
        (:func:`csunet.cleanup.overridden`; ``["off"]``: none)."""
        return cls(loaded, overlap, tta, batch_size, overridden(rules_from_meta(loaded.meta), cleanup or []))

    @property
    def meta(self) -> CheckpointMeta:
        return self.loaded.meta

    def logits(self, tensor: torch.Tensor, on_batch: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """(K, H, W) logits on the CPU of a normalised (C, H, W) tensor of any size, at its own size (a model that
        works at another scale sees the tensor resampled, and its logits are resampled back)."""
        size = tuple(tensor.shape[-2:])
        with torch.no_grad():
            tensor = resample_tensor(tensor, scaled_size(*size, self.meta.scale))
            logits = sliding_window_logits(self.loaded.model, tensor, self.meta.tile_size, self.overlap,
                                           self.batch_size, self.tta_mode, "cpu", on_batch)  # fmt: skip
            return resample_tensor(logits, size)

    def predict_tensor(
        self, tensor: torch.Tensor, on_batch: Callable[[int, int], None] | None = None
    ) -> Prediction:
        """The prediction of a normalised (C, H, W) tensor (an evaluation dataset's images are already)."""
        logits = self.logits(tensor, on_batch)
        raw = class_mask(logits)
        shifted = (
            raw if self.cleanup is None or not self.cleanup.offsets else class_mask(self.cleanup.shifted(logits))
        )
        return Prediction(logits, raw, clean(shifted, self.cleanup), self.meta.activation)

    def predict_array(self, image: np.ndarray, on_batch: Callable[[int, int], None] | None = None) -> Prediction:
        """The prediction of an (H, W, C) float image in [0, 1] of any size, normalised as in training;
        ``on_batch(done, total)`` after each batch of tiles (progress bars, cancel buttons)."""
        return self.predict_tensor(normalised_tensor(image, self.meta), on_batch)

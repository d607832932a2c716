"""Self-contained checkpoints: a training checkpoint carries everything needed to predict with it.

``checkpoint['csunet']`` (written by the training module) holds the architecture and its settings, class names and
display colours, normalisation, tile size, the probability activation and the training recipe. Loading never
unpickles code (``weights_only=True``).
"""

from __future__ import annotations

import io
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from csunet.errors import CsunetError
from csunet.models.registry import create_model
from csunet.utils import atomic_write_bytes
from csunet.weights.files import load_without_running_code

META_KEY = "csunet"
REQUIRED_META = ("model", "model_settings", "classes", "out_channels", "colours", "channels", "normalisation",
                 "tile_size", "activation")  # fmt: skip


class CheckpointError(CsunetError, ValueError):
    """A file that is not a usable csunet checkpoint; the message names the file."""


@dataclass(frozen=True)
class Normalisation:
    """How images are normalised before the model sees them: per-image standardisation (:mod:`csunet.data.intensity`)
    first, then ``(x - mean) / std`` per channel."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    per_image: str = "none"


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint carries besides its weights, everything needed to rebuild and use the model on its own: the
    one reader and writer of a checkpoint's ``csunet`` section (and of the copy inside ONNX and OpenVINO exports).
    Format 1 (before clean-up existed) reads as format 2 without clean-up."""

    FORMAT: ClassVar[int] = 2
    model: str
    model_settings: dict
    classes: list[str]
    out_channels: int
    colours: list[list[int]]
    channels: int
    normalisation: Normalisation
    tile_size: int
    activation: str
    scale: float = 1.0
    """Images are resampled by this factor before the model sees them (``csunet.data.scale``); 1 before it existed."""
    augment: str = "default"
    pixel_size_um: float | None = None
    background: int | None = 0
    """Index of the matrix class; None: none."""
    recipe: dict = field(default_factory=dict)
    """The resolved training configuration (``TrainConfig.to_dict()``)."""
    cleanup: dict | None = None
    """The clean-up decided on validation (:class:`csunet.cleanup.CleanupRules` as a dict); None: none decided."""

    def to_dict(self) -> dict:
        data = asdict(self)
        data["normalisation"] = {key: list(value) if isinstance(value, tuple) else value
                                 for key, value in data["normalisation"].items()}  # fmt: skip
        return {"format": self.FORMAT, **data}

    @classmethod
    def from_dict(cls, data: dict, where: str | os.PathLike = "checkpoint") -> CheckpointMeta:
        if not isinstance(data, dict):
            raise CheckpointError(f"{where}: its '{META_KEY}' section is not a table of settings")
        missing = [key for key in REQUIRED_META if key not in data]
        if missing:
            raise CheckpointError(
                f"{where}: written by an older csunet, its '{META_KEY}' section lacks {', '.join(missing)}; "
                "train it again with this version"
            )
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        normalisation = data["normalisation"]
        values["normalisation"] = Normalisation(tuple(normalisation["mean"]), tuple(normalisation["std"]),
                                                normalisation.get("per_image", "none"))  # fmt: skip
        return cls(**values)

    def changed(self, **changes) -> CheckpointMeta:
        return replace(self, **changes)


@dataclass
class LoadedCheckpoint:
    model: nn.Module
    meta: CheckpointMeta
    path: Path
    engine: str = "torch"
    """What runs ``model``: torch, onnx, openvino or openvino-int8 (``csunet.export.load_engine``)."""

    @property
    def classes(self) -> list[str]:
        return self.meta.classes

    @property
    def colours(self) -> list[tuple[int, int, int]]:
        return [tuple(c) for c in self.meta.colours]


def read_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    checkpoint = load_without_running_code(path, CheckpointError, "Use a checkpoint written by `csunet train`.")
    if not isinstance(checkpoint, dict) or META_KEY not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"{path}: not a csunet training checkpoint (no '{META_KEY}' section); "
            "pretrained encoder weights are loaded with `csunet train --swin-weights/--cnn-weights` instead"
        )
    return checkpoint


def update_meta(path: str | os.PathLike, **changes) -> None:
    """Change fields of the checkpoint's metadata (what was decided after training, e.g. the clean-up), rewriting
    the file atomically: it is whole before and after, never half-written."""
    checkpoint = read_checkpoint(path)
    checkpoint[META_KEY] = CheckpointMeta.from_dict(checkpoint[META_KEY], path).changed(**changes).to_dict()
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def model_state(checkpoint: dict) -> dict:
    """The model's weights in a training checkpoint (the Lightning module keeps them under ``model.``)."""
    prefix = "model."
    return {key[len(prefix) :]: value for key, value in checkpoint["state_dict"].items() if key.startswith(prefix)}


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """The trained model (in eval mode, on ``device``) and its metadata."""
    checkpoint = read_checkpoint(path)
    meta = CheckpointMeta.from_dict(checkpoint[META_KEY], path)
    try:
        model = create_model(meta.model, num_classes=meta.out_channels, **meta.model_settings)
    except (CsunetError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild its model {meta.model!r}: {exc}") from None
    try:
        model.load_state_dict(model_state(checkpoint))
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit {meta.model} {meta.model_settings}: {exc}") from None
    return LoadedCheckpoint(model.to(device).eval(), meta, Path(path))

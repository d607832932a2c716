"""The training configuration: the paper's recipe as defaults, every number a field.

A run folder stores the resolved configuration as ``config.yaml``; ``--resume`` reads it back, so a resumed run
trains exactly what the interrupted one did.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from csunet.train.augment import PRESETS
from csunet.train.losses import LOSSES


@dataclass
class TrainConfig:
    data: str = "sample"
    """Built-in task name (``super-1``), ``sample``, or a dataset description YAML."""
    data_root: str | None = None
    model: str = "cs_unet"
    model_settings: dict = field(
        default_factory=lambda: {"encoder": "resnet50", "depths": "intermediate", "window_size": 8}
    )
    tile_size: int = 512
    """Training crop and inference tile size (for CS-UNet and Swin-Unet also the model's input size)."""
    swin_weights: str | None = None
    cnn_weights: str | None = None
    augment: str = "auto"
    """``super``, ``ebc``, ``default``, or ``auto`` (from the task name)."""
    loss: str = "bce-dice"
    class_weights: str | list[float] | None = None
    """None, ``auto`` (median-frequency balancing over the training masks), or one weight per class."""
    lr: float = 2e-4
    fine_tune_lr: float = 1e-5
    patience: int = 30
    """Validation rounds without improvement before fine-tuning starts, and again before training stops."""
    max_epochs: int = 1000
    max_minutes: float | None = None
    batch_size: int = 4
    crops_per_epoch: int | None = None
    """Random crops drawn per epoch; default: one per training image."""
    val_split: str = "val"
    val_fraction: float = 0.2
    """For a description with a single split ``all``: the share of images held out for validation."""
    val_overlap: float = 0.25
    workers: int | None = None
    seed: int = 0
    deterministic: bool = False
    accelerator: str = "auto"
    devices: str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    compile: bool = False
    """torch.compile the training forward pass: 1.5x the steps per second on an H200 with bf16 after about two
    minutes of compiling; no gain on a small CPU (benchmarks/results)."""
    out: str = "runs"
    name: str | None = None

    def __post_init__(self) -> None:
        if self.augment not in (*PRESETS, "auto"):
            raise ValueError(
                f"unknown augmentation preset {self.augment!r}; choose from auto, {', '.join(PRESETS)}"
            )
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose from {', '.join(LOSSES)}")
        if self.patience < 1:
            raise ValueError("patience must be at least 1 validation round")
        if not 0 <= self.val_overlap < 1:
            raise ValueError("val_overlap must be in [0, 1)")

    def resolved_preset(self) -> str:
        if self.augment != "auto":
            return self.augment
        name = Path(self.data).stem.lower()
        return "ebc" if name.startswith("ebc") else "super" if name.startswith(("super", "sample")) else "default"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(yaml.safe_load(Path(path).read_text()) or {})

    def dump(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

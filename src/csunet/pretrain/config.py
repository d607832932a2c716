"""The pretraining configuration: every number a field; a run folder stores it as ``config.yaml``."""

from __future__ import annotations

from dataclasses import dataclass

from csunet.errors import check_choice, check_field_types, check_range
from csunet.hardware import check_hardware


@dataclass
class PretrainConfig:
    data: str = ""
    """Collection folder with one subfolder per class."""
    depths: str = "intermediate"
    """Swin depths: original [2,2,6,2], intermediate [2,2,2,2] or shallow [1,1,1,1]."""
    res_mlp: bool = True
    """The paper's ResMLP in every Swin block (--plain-mlp: Swin's plain MLP)."""
    img_size: int = 224
    """Input size."""
    window_size: int = 7
    """Swin window size."""
    init: str | None = None
    """Swin checkpoint to start from (file or catalogue name, e.g. swin_t.imagenet): ImageNet->MicroLite."""
    epochs: int = 30
    """Epochs."""
    warmup_epochs: int = 5
    """Linear warm-up epochs."""
    lr: float = 5e-4
    """Peak learning rate (AdamW)."""
    warmup_lr: float = 5e-7
    """Learning rate at the start of the warm-up."""
    min_lr: float = 5e-6
    """Learning rate at the end of the cosine decay."""
    weight_decay: float = 0.05
    """AdamW weight decay."""
    batch_size: int = 128
    """Images per optimiser step."""
    micro_batch: int = 32
    """Images per forward pass; gradients accumulate to ``batch_size``."""
    patience: int = 5
    """Early stopping after this many epochs without validation top-1 improvement."""
    val_fraction: float = 0.1
    """Share of each class's images held out for validation."""
    test_fraction: float = 0.1
    """Share of each class's images held out for the final test."""
    max_minutes: float | None = None
    """Cap on wall time."""
    seed: int = 0
    """Random seed."""
    workers: int = 0
    """DataLoader worker processes."""
    accelerator: str = "auto"
    """Lightning accelerator: auto, cpu, gpu."""
    devices: str = "auto"
    """Lightning devices: auto, a count, or a list."""
    strategy: str = "auto"
    """Lightning strategy: auto, ddp, ..."""
    precision: str = "32-true"
    """Lightning precision: 32-true, bf16-mixed, 16-mixed."""
    out: str = "runs"
    """Folder of run folders."""
    name: str | None = None
    """Run folder name (default: made from the time)."""

    def __post_init__(self) -> None:
        from csunet.models.swin import DEPTH_PRESETS  # imports torch: only when a config is built

        owner = "pretraining setting"
        check_field_types(owner, self)
        check_choice("depths", self.depths, tuple(DEPTH_PRESETS), "depth preset")
        check_hardware(self.accelerator, self.devices, self.precision)
        for name in ("epochs", "batch_size", "micro_batch", "patience"):
            check_range(owner, name, getattr(self, name), 1)
        check_range(owner, "warmup_epochs", self.warmup_epochs, 0)
        check_range(owner, "img_size", self.img_size, 32)
        check_range(owner, "window_size", self.window_size, 1)
        check_range(owner, "weight_decay", self.weight_decay, 0)
        check_range(owner, "workers", self.workers, 0)
        check_range(owner, "seed", self.seed, 0, 2**32 - 1)
        check_range(owner, "max_minutes", self.max_minutes, 0, low_open=True, optional=True)
        for name in ("lr", "warmup_lr", "min_lr"):
            check_range(owner, name, getattr(self, name), 0, low_open=True)
        for name in ("val_fraction", "test_fraction"):
            check_range(owner, name, getattr(self, name), 0, 1, high_open=True)

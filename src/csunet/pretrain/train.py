"""``pretrain``: Swin-T image classification on a prepared collection (the paper's MicroLite recipe), exporting
the encoder in the format ``csunet train --swin-weights`` loads.

Recipe (SPEC 1.2): AdamW, weight decay 0.05, batch 128 (gradient accumulation over smaller micro-batches), cosine
decay after linear warm-up (5 of 30 epochs; learning rates from Microsoft's Swin recipe: 5e-4 peak, 5e-7 warm-up
start, 5e-6 floor), early stopping after 5 epochs without validation top-1 improvement, albumentations augmentation
(brightness/contrast, flips, photometric distortion, noise). Top-1 and top-5 accuracy on validation and test.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from pathlib import Path

import albumentations as A
import lightning as L
import numpy as np
import torch
import yaml
from lightning.pytorch.callbacks import EarlyStopping
from safetensors.torch import save as safetensors_bytes
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchmetrics.classification import MulticlassAccuracy

from csunet.data.errors import DataError
from csunet.data.transforms import normalize
from csunet.models.registry import Capabilities
from csunet.models.swin import SwinEncoder, resolve_depths
from csunet.pretrain.collection import list_collection, read_image
from csunet.pretrain.config import PretrainConfig
from csunet.pretrain.manifest import manifest_sha256
from csunet.runs import (
    BEST,
    LAST,
    AtomicCheckpointIO,
    RunFolder,
    best_and_last_checkpoints,
    checkpoint_path,
    record_start,
    refuse_existing_run,
    require_run,
    timestamped_name,
    write_json,
)
from csunet.train.history import EpochHistory
from csunet.utils import atomic_write_bytes, atomic_write_text

ENCODER_FILE, SIDECAR_FILE = "encoder.safetensors", "encoder.json"
log = logging.getLogger(__name__)


class SwinClassifier(nn.Module):
    """Our Swin encoder (the one CS-UNet uses) + global average pooling + a linear classifier."""

    capabilities = Capabilities(swin="swin")

    def __init__(self, num_classes: int, img_size: int, window_size: int, depths: str, res_mlp: bool) -> None:
        super().__init__()
        self.swin = SwinEncoder(img_size, window_size, resolve_depths(depths), res_mlp=res_mlp)
        self.head = nn.Linear(self.swin.norm.normalized_shape[0], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, _ = self.swin(x)
        return self.head(features.mean(dim=(1, 2)))


def split_items(items: list[tuple[Path, int]], val: float, test: float, seed: int) -> tuple[list, list, list]:
    """Per class, shuffled: test and validation shares (at least one image each where a class has 3+)."""
    rng = np.random.default_rng(seed)
    train, valid, tests = [], [], []
    for label in sorted({c for _, c in items}):
        members = [item for item in items if item[1] == label]
        order = rng.permutation(len(members)).tolist()
        n_test = max(1, round(len(members) * test)) if len(members) >= 3 else 0
        n_val = max(1, round(len(members) * val)) if len(members) >= 3 else 0
        tests += [members[i] for i in order[:n_test]]
        valid += [members[i] for i in order[n_test : n_test + n_val]]
        train += [members[i] for i in order[n_test + n_val :]]
    if not valid:
        raise DataError("too few images to hold out validation images (need 3+ in some class)")
    return train, valid, tests


class ClassificationImages(Dataset):
    def __init__(self, items: list[tuple[Path, int]], transform: A.Compose) -> None:
        self.items, self.transform = items, transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        path, label = self.items[index]
        image = read_image(path)
        image = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
        image = self.transform(image=image)["image"]
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)), label


def pretrain_transforms(size: int) -> tuple[A.Compose, A.Compose]:
    train = A.Compose(
        [
            A.RandomResizedCrop(size=(size, size), scale=(0.5, 1.0)),
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
            A.RandomGamma(gamma_limit=(80, 120), p=0.3),
            A.GaussNoise(std_range=(0.01, 0.04), p=0.3),
            normalize(),
        ]
    )
    return train, A.Compose([A.Resize(size, size), normalize()])


class PretrainModule(L.LightningModule):
    def __init__(self, config: dict, classes: list[str]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.config, self.classes = config, classes
        self.model = SwinClassifier(
            len(classes), config["img_size"], config["window_size"], config["depths"], config["res_mlp"]
        )
        self.loss = nn.CrossEntropyLoss(label_smoothing=0.1)
        top5 = min(5, len(classes))
        self.metrics = nn.ModuleDict(
            {f"{stage}_{name}": MulticlassAccuracy(len(classes), top_k=k, average="micro")
             for stage in ("val", "test") for name, k in (("top1", 1), ("top5", top5))}
        )  # fmt: skip

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, labels = batch
        loss = self.loss(self.model(images), labels)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def _evaluate(self, batch, stage: str) -> None:
        images, labels = batch
        logits = self.model(images)
        self.log(f"{stage}_loss", self.loss(logits, labels), on_epoch=True, sync_dist=True)
        for name in ("top1", "top5"):
            metric = self.metrics[f"{stage}_{name}"]
            metric.update(logits, labels)
            self.log(f"{stage}_{name}", metric, on_epoch=True, prog_bar=name == "top1")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def configure_optimizers(self):
        c = self.config
        optimizer = torch.optim.AdamW(self.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])
        total = max(1, self.trainer.estimated_stepping_batches)
        warmup = max(1, round(total * c["warmup_epochs"] / max(c["epochs"], 1)))

        def factor(step: int) -> float:  # multiplies lr
            if step < warmup:
                return (c["warmup_lr"] + (c["lr"] - c["warmup_lr"]) * step / warmup) / c["lr"]
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return (c["min_lr"] + (c["lr"] - c["min_lr"]) * 0.5 * (1 + math.cos(math.pi * progress))) / c["lr"]

        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def export_encoder(module: PretrainModule, run_dir: Path, sidecar: dict) -> Path:
    """The Swin encoder as safetensors (timm key names, what CS-UNet's loader reads) + a JSON sidecar."""
    state = {
        k: v.contiguous() for k, v in module.model.swin.state_dict().items() if "relative_position_index" not in k
    }
    path = run_dir / ENCODER_FILE
    atomic_write_bytes(path, safetensors_bytes(state))
    atomic_write_text(run_dir / SIDECAR_FILE, json.dumps(sidecar, indent=2) + "\n")
    return path


def pretrain(
    config: PretrainConfig, run_dir: str | Path | None = None, resume: bool = False, progress: bool = True
) -> dict:
    """Pretrain as ``config`` says into a run folder; returns a summary with the exported encoder's path."""
    started = time.monotonic()
    items = list_collection(config.data)
    classes = sorted({c for _, c in items})
    if "" in classes or len(classes) < 2:
        raise DataError(f"{config.data}: pretraining needs class subfolders (2+); cluster unlabelled images first")
    indexed = [(path, classes.index(c)) for path, c in items]
    train_items, val_items, test_items = split_items(
        indexed, config.val_fraction, config.test_fraction, config.seed
    )
    run_dir = Path(run_dir) if run_dir else Path(config.out) / (config.name or timestamped_name("pretrain"))
    if not resume:
        refuse_existing_run(run_dir)
    L.seed_everything(config.seed, workers=True, verbose=False)
    train_tf, eval_tf = pretrain_transforms(config.img_size)
    micro = min(config.micro_batch, config.batch_size)

    def loader(items, transform, shuffle):
        return DataLoader(ClassificationImages(items, transform), batch_size=micro, shuffle=shuffle,
                          num_workers=config.workers, persistent_workers=config.workers > 0,
                          drop_last=shuffle and len(items) > micro)  # fmt: skip

    module = PretrainModule(dataclasses.asdict(config), classes)
    last = checkpoint_path(run_dir, LAST)
    resuming_from = last if resume and last.exists() else None
    if config.init and resuming_from is None:
        from csunet.weights import resolve
        from csunet.weights.load import load_swin

        log.info(str(load_swin(module.model, resolve(config.init, progress))))
    trainer = L.Trainer(
        max_epochs=config.epochs,
        max_time={"minutes": config.max_minutes} if config.max_minutes is not None else None,
        accumulate_grad_batches=math.ceil(config.batch_size / micro),
        accelerator=config.accelerator,
        devices=int(config.devices) if str(config.devices).isdigit() else config.devices,
        strategy=config.strategy,
        precision=config.precision,
        callbacks=[
            EpochHistory(
                run_dir, {"loss.png": ("train_loss", "val_loss"), "accuracy.png": ("val_top1", "val_top5")}
            ),
            EarlyStopping(monitor="val_top1", mode="max", patience=config.patience),
            *best_and_last_checkpoints(run_dir, "val_top1"),
        ],  # fmt: skip
        logger=False,
        plugins=[AtomicCheckpointIO()],
        default_root_dir=run_dir,
        num_sanity_val_steps=0,
        enable_progress_bar=progress,
        enable_model_summary=False,
    )
    if trainer.is_global_zero:
        record_start(run_dir, yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))
    trainer.fit(module, loader(train_items, train_tf, True), loader(val_items, eval_tf, False),
                ckpt_path=resuming_from, weights_only=True)  # fmt: skip
    if not trainer.is_global_zero:
        return {}
    best = checkpoint_path(run_dir, BEST)
    module.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
    test = {}
    if test_items:
        (test,) = trainer.test(module, loader(test_items, eval_tf, False), verbose=False)
    sidecar = {
        "format": "csunet swin encoder 1",
        "depths": list(resolve_depths(config.depths)),
        "window_size": config.window_size,
        "img_size": config.img_size,
        "res_mlp": config.res_mlp,
        "classes": classes,
        "data": str(config.data),
        "manifest_sha256": manifest_sha256(Path(config.data)),
        "init": config.init,
        "epochs": trainer.current_epoch,
        "test": {k: float(v) for k, v in test.items()},
    }
    encoder = export_encoder(module, run_dir, sidecar)
    summary = {"run_dir": str(run_dir), "encoder": str(encoder), "images": {"train": len(train_items),
               "val": len(val_items), "test": len(test_items)}, "wall_seconds": round(time.monotonic() - started, 1),
               **sidecar}  # fmt: skip
    write_json(RunFolder(run_dir).summary, summary)
    return summary


def resume_pretraining(run_dir: str | Path, progress: bool = True) -> dict:
    config = PretrainConfig(**yaml.safe_load(require_run(Path(run_dir), "pretraining run folder").read_text()))
    return pretrain(config, Path(run_dir), resume=True, progress=progress)

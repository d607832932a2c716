"""The LightningModule that trains any registry model (metrics: :mod:`csunet.metrics`)."""

from __future__ import annotations

import math
import time

import lightning as L
import torch

from csunet.checkpoint import META_KEY, CheckpointMeta
from csunet.errors import CsunetError
from csunet.inference import sliding_window_logits
from csunet.metrics import ConfusionMatrix, NasaIoU, iou_summary
from csunet.models.registry import create_model
from csunet.train.losses import build_loss


class TrainingDiverged(CsunetError, RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def warmup_cosine(step: int, total: int, warmup: float, time_progress: float = 0.0) -> float:
    """Learning-rate factor over a budget of ``total`` steps (0: time alone), or of time when ``time_progress`` (the
    share of a time budget used) is further along: linear up to 1 over the first ``warmup`` share, then a cosine
    down to 0 at the end. Relative to the budget, so a short run on a slow machine warms up as briefly as a long
    one."""
    progress = min(1.0, max((step + 1) / total if total else 0.0, time_progress))
    if progress < warmup:
        return progress / warmup
    return 0.5 * (1 + math.cos(math.pi * (progress - warmup) / (1 - warmup)))


NONFINITE_CHECK_EVERY = 25
"""Training steps between looks at the loss for NaN/inf (each look waits for the GPU)."""


class SegmentationModule(L.LightningModule):
    """Trains ``meta['model']`` with the configured loss; validates whole images by sliding window.

    ``meta`` is what makes a checkpoint self-contained (architecture and settings, classes and colours,
    normalisation, tile size, recipe); it is saved under ``checkpoint['csunet']``.
    """

    def __init__(self, config: dict, meta: CheckpointMeta, class_weights: list[float] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters({"config": config, "meta": meta.to_dict(), "class_weights": class_weights})
        self.config, self.meta = config, meta
        self.classes: list[str] = meta.classes
        self.model = create_model(meta.model, num_classes=meta.out_channels, **meta.model_settings).to(
            memory_format=torch.channels_last
        )  # faster CNN convolutions; the Swin branch is unaffected
        # a compiled bound method, not a module attribute: the state dict keeps its plain key names
        self._compiled_forward = torch.compile(self.model.forward) if config.get("compile") else None
        self.loss = build_loss(config["loss"], class_weights)
        self.val_iou = NasaIoU(meta.activation)
        self.val_confusion = ConfusionMatrix(len(self.classes))
        self.last_val_confusion: torch.Tensor | None = None
        # losses since the last look for NaN/inf, left on the device: looking every step would sync the host
        self._unchecked_losses: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, masks = batch
        forward = self._compiled_forward or self.model
        loss = self.loss(forward(images.contiguous(memory_format=torch.channels_last)), masks)
        self._unchecked_losses.append(loss.detach())
        self.log(
            "train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(images), sync_dist=True
        )
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        """Look for a diverged loss every ``NONFINITE_CHECK_EVERY`` steps and whenever the loop is about to stop
        or validate, so no checkpoint is ever written from diverged weights."""
        last = batch_idx + 1 >= self.trainer.num_training_batches or self.trainer.should_stop
        if ((batch_idx + 1) % NONFINITE_CHECK_EVERY and not last) or not self._unchecked_losses:
            return
        losses = torch.stack(self._unchecked_losses).float().cpu()  # the one host sync
        self._unchecked_losses.clear()
        bad = (~torch.isfinite(losses)).nonzero().flatten().tolist()
        if bad:
            step = self.global_step - len(losses) + bad[0]  # global_step already counts this batch's step
            raise TrainingDiverged(
                f"the training loss became {losses[bad[0]].item()} at epoch {self.current_epoch}, step {step}; "
                "training stopped and the last good checkpoint is kept. Usual causes: a learning rate too high "
                "for this model (try a lower --lr), or NaN/infinite values in data passed in from Python"
            )

    def validation_step(self, batch, batch_idx: int) -> None:
        images, masks = batch
        for image, mask in zip(images, masks):
            logits = sliding_window_logits(
                self.model, image, self.meta.tile_size, self.config["val_overlap"], self.config["batch_size"]
            )[None]
            self.log("val_loss", self.loss(logits, mask[None]), on_epoch=True, batch_size=1, sync_dist=True)
            self.val_iou.update(logits, mask[None])
            self.val_confusion.update(logits, mask[None])

    def on_validation_epoch_end(self) -> None:
        summary = iou_summary(
            self.val_iou.compute(),
            self.val_confusion.compute().cpu(),
            self.classes,
            self.meta.background,
        )
        self.last_val_confusion = torch.tensor(summary["confusion"])
        self.val_iou.reset()
        self.val_confusion.reset()
        # values are already summed over processes by torchmetrics: no sync_dist here
        self.log("val_iou", summary["nasa_iou"], prog_bar=True)
        self.log("val_miou", summary["miou_without_background"])
        for name, value in summary["per_class_iou"].items():
            self.log(f"val_iou_{name}", value)

    def configure_optimizers(self):
        config = self.config
        kind = torch.optim.AdamW if config.get("optimizer") == "adamw" else torch.optim.Adam
        optimizer = kind(self.parameters(), lr=config["lr"], weight_decay=config.get("weight_decay") or 0.0)
        if config.get("schedule") != "cosine":
            return optimizer  # the two-stage schedule sets its rate itself (TwoStageSchedule)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: warmup_cosine(step, config["max_steps"], config["warmup"], self.time_progress()),
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_fit_start(self) -> None:
        self._fit_started = time.monotonic()

    def time_progress(self) -> float:
        """Share of ``max_minutes`` used in this session (0 without a time cap): a cosine schedule under a time
        budget reaches its end when the time does, whichever of steps and minutes runs out first."""
        minutes = self.config.get("max_minutes")
        started = getattr(self, "_fit_started", None)
        return 0.0 if not minutes or started is None else (time.monotonic() - started) / (60 * minutes)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[META_KEY] = self.meta.to_dict()

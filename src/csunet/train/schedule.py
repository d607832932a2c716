"""The paper's two-stage schedule as a Lightning callback.

Stage 1 trains at ``lr`` until validation IoU has not improved for ``patience`` validation rounds; then the best
weights are reloaded and training continues at ``fine_tune_lr`` with a fresh optimiser state (Adam's moments
cleared) until ``patience`` more rounds pass without improvement.
"""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info


class EpochBudget(L.Callback):
    """Keep training within ``minutes``, validation included: stop when one more step and the validation after it
    would end past the budget, mid-epoch if need be (Lightning then validates the weights so far and writes the
    checkpoints), so the last validation ends within the budget and the cosine schedule, which decays over the
    same minutes, ends where training ends. A validation not yet measured is estimated as ``validation_steps``
    training steps (:func:`csunet.train.plan.validation_steps`)."""

    def __init__(self, minutes: float, validation_steps: float) -> None:
        self.seconds = 60 * minutes
        self.validation_steps = validation_steps
        self.started: float | None = None
        self.batch_started: float | None = None
        self.step_seconds = 0.0
        self.validation_started: float | None = None
        self.validation_seconds: float | None = None
        self.stopped_early = False

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.started = time.monotonic()

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch, batch_idx: int) -> None:
        self.batch_started = time.monotonic()

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx) -> None:
        now = time.monotonic()
        step = now - self.batch_started
        self.step_seconds = step if not self.step_seconds else max(step, 0.8 * self.step_seconds + 0.2 * step)
        validation = self.validation_seconds
        if validation is None:
            validation = self.validation_steps * self.step_seconds
        if not trainer.should_stop and now - self.started + self.step_seconds + validation > self.seconds:
            rank_zero_info(
                f"time budget: another step and a validation would end after {self.seconds / 60:g} minutes; "
                "validating now and done"
            )
            trainer.should_stop = self.stopped_early = True

    def on_validation_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.validation_started = time.monotonic()

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.validation_started is not None:
            self.validation_seconds = time.monotonic() - self.validation_started


class TwoStageSchedule(L.Callback):
    def __init__(self, patience: int, fine_tune_lr: float, monitor: str = "val_iou") -> None:
        self.patience, self.fine_tune_lr, self.monitor = patience, fine_tune_lr, monitor
        self.stage, self.best, self.wait = 1, float("-inf"), 0
        self.switched_at_epoch: int | None = None
        self._validated_epoch: int | None = None
        self.reloaded_best: bool | None = None
        """Whether stage 2 started from the reloaded best checkpoint (None while in stage 1)."""

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._validated_epoch = trainer.current_epoch

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # runs before ModelCheckpoint (Lightning calls checkpoint callbacks last), so last.ckpt holds the new stage
        if self.monitor not in trainer.callback_metrics or self._validated_epoch != trainer.current_epoch:
            return  # an epoch cut short by the time limit was not validated
        score = float(trainer.callback_metrics[self.monitor])
        if score > self.best:
            self.best, self.wait = score, 0
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        if self.stage == 1:
            self._start_fine_tuning(trainer, module)
        else:
            rank_zero_info(
                f"{self.monitor} has not improved for {self.patience} rounds at {self.fine_tune_lr}: done"
            )
            trainer.should_stop = True

    def _start_fine_tuning(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        best_path = next(
            (c.best_model_path for c in trainer.checkpoint_callbacks if c.monitor == self.monitor), ""
        )
        reloaded = bool(best_path) and Path(best_path).is_file()
        if reloaded:
            state = torch.load(best_path, map_location=module.device, weights_only=True)["state_dict"]
            module.load_state_dict(state)
        for optimizer in trainer.optimizers:
            optimizer.state.clear()
            for group in optimizer.param_groups:
                group["lr"] = self.fine_tune_lr
        self.stage, self.wait = 2, 0
        self.switched_at_epoch = trainer.current_epoch
        self.reloaded_best = reloaded
        what = (
            f"reloaded the best weights ({self.monitor} {self.best:.4f}) and continue"
            if reloaded
            else "no best checkpoint was written to reload, so training continues from the current weights"
        )
        rank_zero_info(
            f"{self.monitor} has not improved for {self.patience} rounds: {what} at lr {self.fine_tune_lr}"
        )

    def state_dict(self) -> dict:
        return {
            "stage": self.stage,
            "best": self.best,
            "wait": self.wait,
            "switched_at_epoch": self.switched_at_epoch,
        }

    def load_state_dict(self, state: dict) -> None:
        self.stage, self.best, self.wait = state["stage"], state["best"], state["wait"]
        self.switched_at_epoch = state["switched_at_epoch"]

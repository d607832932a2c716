"""Per-epoch history of a run: ``metrics.csv`` and PNG curves, rewritten atomically after every validation.

The history travels in the checkpoint (callback state), so a resumed run continues the same table from the epoch
its weights come from.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import lightning as L

from csunet.runs import RunFolder
from csunet.utils import atomic_write_bytes, atomic_write_text

PLOTS = {"loss.png": ("train_loss", "val_loss"), "iou.png": ("val_iou", "val_miou")}


def write_csv(path: Path, rows: list[dict]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def rate_switches(rows: list[dict]) -> list[int]:
    """Epochs where training switched stage (the paper's 2e-4 -> 1e-5): the rate drops five-fold or more and then
    stays. A schedule that changes the rate every epoch (cosine) has none."""
    rates = [row.get("lr") for row in rows]
    return [rows[i]["epoch"] for i in range(1, len(rows) - 1)
            if rates[i] and rates[i - 1] and rates[i] < rates[i - 1] / 5 and rates[i + 1] == rates[i]]  # fmt: skip


def plot_curves(rows: list[dict], keys: tuple[str, ...], title: str) -> bytes:
    """A PNG of the ``keys`` columns against epoch."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5), dpi=100)
    for key in keys:
        points = [(row["epoch"], row[key]) for row in rows if row.get(key) is not None]
        if points:
            axes.plot(*zip(*points), marker=".", label=key)
    for number, epoch in enumerate(rate_switches(rows)):
        axes.axvline(epoch, color="grey", linestyle=":", label="learning-rate switch" if number == 0 else None)
    axes.set_xlabel("epoch")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


class EpochHistory(L.Callback):
    """``plots`` maps PNG names to the metric columns drawn in them."""

    def __init__(self, run_dir: Path, plots: dict[str, tuple[str, ...]] = PLOTS) -> None:
        self.run_dir = Path(run_dir)
        self.plots = plots
        self.rows: list[dict] = []
        self._epoch_start = time.monotonic()
        self._validated_epoch: int | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._epoch_start = time.monotonic()

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._validated_epoch = trainer.current_epoch

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # validation has run and the epoch's training metrics are aggregated; checkpoints are saved after this.
        # An epoch cut short by the time limit has no validation of its own: it gets no row.
        if self._validated_epoch != trainer.current_epoch:
            return
        row = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        row.update({k: round(float(v), 6) for k, v in sorted(trainer.callback_metrics.items()) if v.numel() == 1})
        row["lr"] = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
        row["epoch_seconds"] = round(time.monotonic() - self._epoch_start, 2)
        self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]
        if trainer.is_global_zero:
            self.write()

    def write(self) -> None:
        write_csv(RunFolder(self.run_dir).metrics, self.rows)
        for name, keys in self.plots.items():
            atomic_write_bytes(self.run_dir / name, plot_curves(self.rows, keys, name.removesuffix(".png")))

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state: dict) -> None:
        self.rows = list(state["rows"])

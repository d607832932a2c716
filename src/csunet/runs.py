"""Run folders, shared by training, pretraining and experiment grids: naming, the record of the configuration and
environment, and atomic JSON and checkpoint writes (an interruption never leaves half a file)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from csunet.doctor import environment_report
from csunet.errors import MissingInputError, RunExistsError
from csunet.utils import atomic_write_bytes, atomic_write_text

CONFIG_FILE, ENVIRONMENT_FILE, SUMMARY_FILE = "config.yaml", "environment.json", "summary.json"
CHECKPOINTS, BEST, LAST = "checkpoints", "best.ckpt", "last.ckpt"


@dataclass(frozen=True)
class RunFolder:
    """The layout of a run folder, in one place: every file a run writes, where every reader finds it."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    config = property(lambda self: self.path / CONFIG_FILE)
    environment = property(lambda self: self.path / ENVIRONMENT_FILE)
    summary = property(lambda self: self.path / SUMMARY_FILE)
    test_metrics = property(lambda self: self.path / "test_metrics.json")
    metrics = property(lambda self: self.path / "metrics.csv")
    holdout = property(lambda self: self.path / "holdout.json")
    weights_report = property(lambda self: self.path / "weights_report.json")
    checkpoints = property(lambda self: self.path / CHECKPOINTS)
    best = property(lambda self: self.path / CHECKPOINTS / BEST)
    last = property(lambda self: self.path / CHECKPOINTS / LAST)
    figures = property(lambda self: self.path / "figures")
    predictions = property(lambda self: self.path / "predictions")
    measurements = property(lambda self: self.path / "measurements")
    report = property(lambda self: self.path / "report.html")

    def is_run(self) -> bool:
        return self.config.is_file()


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints go to a temporary file renamed into place: an interrupted save never damages the old one."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(Path(path), buffer.getvalue())


def write_json(path: Path, data: dict | list) -> None:
    """Indented JSON, written atomically; values JSON does not know become strings."""
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def timestamped_name(*parts: str) -> str:
    """``parts-YYYYmmdd-HHMMSS``: a default run name that sorts by start time."""
    return "-".join([*parts, datetime.now().strftime("%Y%m%d-%H%M%S")])


def refuse_existing_run(run_dir: Path) -> None:
    """A new run never writes into a folder holding another run; one that died before writing any checkpoint or
    summary (a bad setting found at start, say) left nothing worth keeping, so its name can be used again."""
    started = (run_dir / CONFIG_FILE).exists()
    got_somewhere = (run_dir / CHECKPOINTS / LAST).exists() or (run_dir / SUMMARY_FILE).exists()
    if started and got_somewhere:
        raise RunExistsError(f"{run_dir} already holds a run; continue it with --resume or choose another --name")


def require_run(run_dir: Path, what: str = "run folder") -> Path:
    """The configuration file of a run folder to resume; a clear error when there is none."""
    config = Path(run_dir) / CONFIG_FILE
    if not config.is_file():
        raise MissingInputError(f"{run_dir}: no {CONFIG_FILE}, so not a {what} to resume")
    return config


def record_start(run_dir: Path, config_yaml: str) -> None:
    """Write the resolved configuration (what ``--resume`` reads) and the environment, for the record."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / CONFIG_FILE, config_yaml)
    write_json(run_dir / ENVIRONMENT_FILE, environment_report())


def checkpoint_path(run_dir: Path, name: str = BEST) -> Path:
    return Path(run_dir) / CHECKPOINTS / name


def best_and_last_checkpoints(run_dir: Path, monitor: str, on_train_epoch_end: bool | None = None) -> list:
    """Lightning callbacks writing ``best.ckpt`` (highest ``monitor``; weights only, what evaluation and
    fine-tuning need) and ``last.ckpt`` (everything a resume needs) into the run's checkpoint folder."""
    folder = Path(run_dir) / CHECKPOINTS
    common = {"dirpath": folder, "save_top_k": 1, "enable_version_counter": False,
              "save_on_train_epoch_end": on_train_epoch_end}  # fmt: skip
    return [
        ModelCheckpoint(filename=Path(BEST).stem, monitor=monitor, mode="max", save_weights_only=True, **common),
        ModelCheckpoint(filename=Path(LAST).stem, **common),
    ]

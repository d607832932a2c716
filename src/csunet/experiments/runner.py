"""Run a grid into a results database: finished runs are skipped, a failing run is recorded and the grid goes on,
an interrupted grid continues where it stopped (a run left ``running`` is started again)."""

from __future__ import annotations

import platform
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from csunet.experiments.grid import GridRun, expand_grid, load_grid
from csunet.experiments.store import connect, save, status_of
from csunet.runs import RunFolder
from csunet.sharding import shard_of


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.node()} ({platform.machine()}, {torch.get_num_threads()} threads, {gpu})"


def train_and_test(run: GridRun, out: Path) -> dict:
    """The default run: issue 4's training (which evaluates the best checkpoint on the test split)."""
    from csunet.train import train

    config = run.config
    config.out, config.name = str(out), run.id
    run_dir = out / run.id
    resume = RunFolder(run_dir).config.exists()
    summary = train(config, run_dir, resume=resume, progress=False)
    return summary


def run_grid(
    grid_path: str | Path,
    db_path: str | Path,
    shard_spec: tuple[int, int] = (1, 1),
    out: str | Path = "runs/grids",
    data_root: str | None = None,
    execute: Callable[[GridRun, Path], dict] = train_and_test,
    say: Callable[[str], None] = print,
) -> dict:
    grid = load_grid(grid_path)
    runs = shard_of(expand_grid(grid, data_root), *shard_spec)
    connection = connect(db_path)
    out = Path(out) / grid["name"]
    counts = {"finished": 0, "failed": 0, "skipped": 0}
    for index, run in enumerate(runs, 1):
        if status_of(connection, run.id) == "finished":
            counts["skipped"] += 1
            continue
        labels = run.labels()
        base = {"id": run.id, "grid": grid["name"], **labels, "config": run.config.to_dict(), "machine": machine()}
        say(f"[{index}/{len(runs)}] {run.id}: {labels}")
        save(connection, {**base, "status": "running"})
        started = time.monotonic()
        try:
            summary = execute(run, out)
            test = summary.get("test", {})
            if test.get("nasa_iou") is None:  # a run without its test score must be retried, not counted
                raise RuntimeError(f"the final test gave no score: {summary.get('test_error', 'no test ran')}")
            save(connection, {**base, "status": "finished", "nasa_iou": test.get("nasa_iou"),
                              "miou": test.get("miou_without_background"), "per_class": test.get("per_class_iou"),
                              "epochs": summary.get("epochs"), "wall_seconds": round(time.monotonic() - started, 1),
                              "run_dir": summary.get("run_dir"), "checkpoint": summary.get("best_checkpoint")})  # fmt: skip
            counts["finished"] += 1
        except Exception:  # a failed run is recorded with its error and the grid goes on
            save(connection, {**base, "status": "failed", "error": traceback.format_exc(limit=20),
                              "wall_seconds": round(time.monotonic() - started, 1)})  # fmt: skip
            counts["failed"] += 1
    return counts

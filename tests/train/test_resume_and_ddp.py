"""Real processes: kill a training run mid-epoch (and resume it); two-process DDP (gloo) on the CPU."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from csunet.cli import app
from csunet.evaluate import evaluate
from tests.conftest import TINY_CLI

CSUNET = [sys.executable, "-m", "csunet.cli"]
runner = CliRunner()


def run_cli(args, **kwargs):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(CSUNET + args, capture_output=True, text=True, env=env, timeout=600, **kwargs)


def rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def test_a_killed_run_resumes_to_a_complete_run_folder(tmp_path):
    run_dir = tmp_path / "r"
    process = subprocess.Popen(
        CSUNET + ["train", *TINY_CLI, "--max-epochs", "4", "--out", str(tmp_path), "--name", "r"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)  # mid-way through epoch 1 (epoch 0's checkpoint just landed)
    process.wait()
    assert last.exists(), "the run never finished its first epoch"
    assert not (run_dir / "summary.json").exists()
    # resuming only adds: options that would change the run are refused by name, and so is a damaged last.ckpt
    # (in this process from here on: only the kill needs a process of its own)
    result = runner.invoke(app, ["train", "--resume", str(run_dir), "--lr", "0.1", "--task", "super-1"])
    said = " ".join(result.output.split())  # the console wraps long lines
    assert result.exit_code == 2 and "lr 0.1 (the run's: 0.0002)" in said
    assert "data 'super-1' (the run's: 'sample')" in said
    intact = last.read_bytes()
    last.write_bytes(intact[: len(intact) // 2])
    result = runner.invoke(app, ["train", "--resume", str(run_dir)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "last.ckpt" in said and "nothing was changed" in said
    last.write_bytes(intact)
    result = runner.invoke(app, ["train", "--resume", str(run_dir)])
    assert result.exit_code == 0, result.output[-3000:]
    assert [int(r["epoch"]) for r in rows(run_dir)] == [0, 1, 2, 3]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs"] == 4
    assert json.loads((run_dir / "test_metrics.json").read_text())["images"] == 4
    assert not list(run_dir.rglob("*.tmp"))
    # a finished run is never retrained nor rewritten, with or without its last.ckpt
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    for remove_last in (False, True):
        if remove_last:
            last.unlink()
            del before[last]
        result = runner.invoke(app, ["train", "--resume", str(run_dir)])
        assert result.exit_code == 2 and "this run finished" in " ".join(result.output.split())
        assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


@pytest.mark.skipif(sys.platform != "linux", reason="gloo DDP test written for Linux process launching")
def test_two_process_ddp_gathers_validation_metrics_over_both(tmp_path):
    result = run_cli(
        ["train", *TINY_CLI, "--max-epochs", "1", "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp",
         "--val-overlap", "0", "--out", str(tmp_path), "--name", "ddp"],
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "world_size: 2" in result.stderr or "distributed_backend=gloo" in result.stderr
    logged = float(rows(tmp_path / "ddp")[0]["val_iou"])
    # the 4 validation images split 2 + 2 over the processes; one process alone on all 4 must agree
    alone = evaluate(tmp_path / "ddp" / "checkpoints" / "best.ckpt", split="val", overlap=0.0, tta="none",
                     progress=False)  # fmt: skip
    assert alone["images"] == 4
    assert logged == pytest.approx(alone["nasa_iou"], abs=1e-5)

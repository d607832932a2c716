"""Train the demo's CS-UNet on each of NASA's seven benchmark tasks under a fixed CPU time budget and tabulate
test metrics: `python -m benchmarks.train_cpu [--minutes M] [--tasks super-1,ebc-1]`.

Writes benchmarks/results/train_cpu.md and .json. Needs the NASA data ($CSUNET_DATA or ../shared).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from csunet.data.tasks import resolve_data_root
from csunet.demo import demo_config
from csunet.evaluate import evaluate
from csunet.train import train
from csunet.utils import atomic_write_text

TASKS = ["super-1", "super-2", "super-3", "super-4", "ebc-1", "ebc-2", "ebc-3"]
RESULTS = Path(__file__).parent / "results"


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def run_task(task: str, minutes: float, data_root: Path, out: Path) -> dict:
    config = demo_config(out, minutes)
    config.data, config.data_root, config.name = task, str(data_root), task
    started = time.monotonic()
    summary = train(config, progress=False)
    wall = time.monotonic() - started
    test = evaluate(summary["best_checkpoint"], split="test", overlap=0.5, progress=False)
    return {
        "task": task,
        "nasa_iou": test["nasa_iou"],
        "miou_without_background": test["miou_without_background"],
        "per_class_iou": test["per_class_iou"],
        "epochs": summary["epochs"],
        "best_val_iou": summary["best_val_iou"],
        "wall_seconds": round(wall, 1),
    }


def table(rows: list[dict], minutes: float) -> str:
    lines = [
        f"# CS-UNet (resnet18 + intermediate Swin-T, 256 crops, batch 4, from scratch), {minutes:g} CPU minutes per task",
        "",
        f"Machine: {machine()}. Command: `python -m benchmarks.train_cpu --minutes {minutes:g}`.",
        "NASA IoU: pooled over the output channels per image, mean over test images; Super models have 3 channels",
        "(matrix inside the pool), binary EBC models one sigmoid channel, so there it is the oxide IoU alone.",
        "mIoU w/o bg: mean over non-background classes of the per-class IoU over all test pixels.",
        "",
        "| task | NASA IoU | mIoU w/o bg | per-class IoU | epochs | wall s |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        classes = ", ".join(f"{k} {v:.3f}" for k, v in row["per_class_iou"].items())
        lines.append(
            f"| {row['task']} | {row['nasa_iou']:.4f} | {row['miou_without_background']:.4f} | {classes} | "
            f"{row['epochs']} | {row['wall_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget per task")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--out", type=Path, default=Path("runs/bench-train-cpu"))
    args = parser.parse_args(argv)
    data_root = resolve_data_root()
    results = RESULTS / "train_cpu.json"
    # rows of tasks not rerun now are kept (so one task can be rerun), in the order of TASKS
    rows = {r["task"]: r for r in json.loads(results.read_text())["rows"]} if results.is_file() else {}
    for task in args.tasks.split(","):
        rows[task] = run_task(task, args.minutes, data_root, args.out / time.strftime("%Y%m%d-%H%M%S"))
        ordered = sorted(rows.values(), key=lambda r: TASKS.index(r["task"]) if r["task"] in TASKS else len(TASKS))
        RESULTS.mkdir(exist_ok=True)
        atomic_write_text(results, json.dumps({"machine": machine(), "rows": ordered}, indent=2))
        atomic_write_text(RESULTS / "train_cpu.md", table(ordered, args.minutes))
    print((RESULTS / "train_cpu.md").read_text())


if __name__ == "__main__":
    main()

"""Measurement agreement on the seven NASA tasks: the numbers users publish (area fractions, particle counts and
sizes, layer thickness), measured on the predicted test masks and on the true ones by the same code, before and
after the clean-up that validation decided.

    python -m benchmarks.measure_agreement --minutes 5
    python -m benchmarks.measure_agreement --runs runs/bench-train-cpu/STAMP   # checkpoints train_cpu made

Each task: the demo's configuration (CS-UNet resnet18 + a shallow Swin side, embed 48, the fast recipe, batch 4)
trained for the same budget as benchmarks/train_cpu.py, or that run's checkpoint; the clean-up chosen on the
validation split (limits from the training masks); then the test split with and without it. Writes
benchmarks/results/measure_agreement.md/.json; rows of tasks not rerun are kept. Needs the NASA data.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from benchmarks.train_cpu import CpuShare, cpu_name, run_one
from csunet.checkpoint import read_checkpoint
from csunet.cleanup import IOU_TOLERANCE, MIN_GAIN
from csunet.data.tasks import resolve_data_root
from csunet.evaluate import choose_cleanup, evaluate
from csunet.morphometry import agreement_rows, agreement_score
from csunet.runs import RunFolder
from csunet.utils import atomic_write_text

TASKS = ["super-1", "super-2", "super-3", "super-4", "ebc-1", "ebc-2", "ebc-3"]
MODEL = "cs_unet-shallow48"
RESULTS = Path(__file__).parent / "results"
TARGETS = {
    "super-1": "secondary count and ECD d50 within 5 %, tertiary count and d50 within 10 %, area fractions within "
    "0.005",
    "super-2": "particle counts within 10 %",
    "super-3": "particle counts within 10 %",
    "super-4": "particle counts within 10 %",
    "ebc-1": "oxide mean thickness within 5 %",
    "ebc-2": "oxide mean thickness within 5 %",
}


def checkpoint_for(task: str, minutes: float, data_root: Path, out: Path, runs: Path | None) -> tuple[Path, dict]:
    """A copy (in ``out``) of the task's checkpoint from ``runs``, or a fresh training run's; and how it trained (for
    a checkpoint from ``runs``, the CPU share its train_cpu row recorded)."""
    if runs is not None:
        found = sorted(runs.glob(f"{task}-{MODEL}-*/checkpoints/best.ckpt"))
        if not found:
            raise SystemExit(f"{runs}: no {task} run of {MODEL} there")
        copy = out / f"{task}.ckpt"
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found[-1], copy)
        run = RunFolder(found[-1].parent.parent)
        summary = json.loads(run.summary.read_text()) if run.summary.is_file() else {}
        made_it = [row for row in _rows("train_cpu.json") if row.get("best_checkpoint") == str(found[-1])]
        kept = {key: made_it[0][key] for key in ("wall_seconds", "cpu_share") if made_it and key in made_it[0]}
        return copy, {"trained": str(run.path), **kept} | (
            {"steps": summary["steps"]} if "steps" in summary else {}
        )
    row = run_one(task, MODEL, minutes, data_root, out, recipe="fast")
    return Path(row.pop("best_checkpoint")), {key: row[key] for key in ("steps", "wall_seconds", "cpu_share")}


def _rows(name: str = "measure_agreement.json") -> list[dict]:
    path = RESULTS / name
    return json.loads(path.read_text())["rows"] if path.is_file() else []


def run_task(task: str, minutes: float, data_root: Path, out: Path, runs: Path | None) -> dict:
    checkpoint, trained = checkpoint_for(task, minutes, data_root, out, runs)
    with CpuShare() as share:
        if runs is not None or "cleanup" not in read_checkpoint(checkpoint)["csunet"]:
            choose_cleanup(checkpoint, split="val", progress=False)  # earlier runs: decided again by today's rules
        rules = read_checkpoint(checkpoint)["csunet"]["cleanup"]
        test = evaluate(checkpoint, split="test", progress=False)
        val = evaluate(checkpoint, split="val", progress=False)  # where the clean-up was decided: for comparison
    cleaned = test["measurement_agreement"]
    raw = test.get("measurement_agreement_without_cleanup", cleaned)
    val_cleaned = val["measurement_agreement"]
    val_raw = val.get("measurement_agreement_without_cleanup", val_cleaned)
    for found in (cleaned, raw, val_cleaned, val_raw):
        found.pop("particle_sizes", None)  # thousands of numbers: the report shows them as histograms
    return {
        "task": task, "model": MODEL, "recipe": "fast", "minutes": minutes, "cpu": cpu_name(),
        "measured": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), **trained, "evaluation_cpu_share": share.record,
        "nasa_iou": test["nasa_iou"], "tta": test["tta"], "mask_miou": test["mask_miou"],
        "mask_miou_without_cleanup": test.get("mask_miou_without_cleanup", test["mask_miou"]),
        "cleanup": test["cleanup"], "cleanup_decisions": rules["decisions"],
        "score": agreement_score(cleaned), "score_without_cleanup": agreement_score(raw),
        "agreement": cleaned, "agreement_without_cleanup": raw,
        "val_agreement": val_cleaned, "val_agreement_without_cleanup": val_raw,
    }  # fmt: skip


def table(rows: list[dict], machine: str) -> str:
    lines = [
        "# Measurement agreement on the NASA test images",
        "",
        f"CPU: {machine}. The demo's configuration (CS-UNet resnet18 + shallow Swin side, embed 48, fast recipe, "
        "batch 4) per task, trained for the budget of `benchmarks/train_cpu.py`; test masks measured by "
        "`csunet.morphometry` with the settings of `csunet measure` (particles from 5 px, border particles out of "
        "sizes, lengths in pixels) against the true masks measured alike. `raw`: the arg-max masks; `cleaned`: "
        "after the clean-up kept on the validation split (logit offsets per class, then rules with limits from the "
        f"training masks; an offset or rule is kept when it lowers the validation measurement error by at least "
        f"{MIN_GAIN:g} and neither it nor the kept rules together lower the validation mask IoU by more than "
        f"{IOU_TOLERANCE:g}; rows measured before 2026-12-03 had no offsets, allowed 0.001 per rule and split a "
        "small region between its neighbours pixel by pixel). TTA: the test-time augmentation the masks were "
        "predicted with (`--tta auto` from 2026-12-03 on: the four flips for the Super tasks; rows before: none). "
        "Relative errors in %, area fractions as differences; the last column: the errors on the validation images "
        "(where the clean-up was decided), raw / cleaned, to see whether validation and test are off the same way "
        "(rows measured before 2026-12-03 11:30: not recorded; clean-up before then: rules tried in a fixed order, offsets "
        "first, instead of forward selection). "
        "Command: `python -m benchmarks.measure_agreement` (nothing else running).",
        "",
        "| task | trained | TTA | NASA IoU | mask mIoU raw / cleaned | error score raw / cleaned | clean-up kept |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        trained = f"{row['steps']} steps" if "steps" in row else "train_cpu run"
        others = (row.get("cpu_share") or {}).get("others_cores")
        if others is not None and others >= 0.25:
            trained += f", shared: others used {others:.2f} cores"
        lines.append(
            f"| {row['task']} | {trained} | {row.get('tta', 'none')} | {row['nasa_iou']:.3f} | {row['mask_miou_without_cleanup']:.3f} / "
            f"{row['mask_miou']:.3f} | {row['score_without_cleanup']:.3f} / {row['score']:.3f} | {row['cleanup']} |"
        )
    for row in rows:
        lines += ["", f"## {row['task']} ({row['agreement']['images']} test images)", ""]
        if row["task"] in TARGETS:
            lines += [f"Target: {TARGETS[row['task']]}.", ""]
        lines += ["| class | measure | truth | raw | error | cleaned | error | validation: raw / cleaned error |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        val = [[], []]
        if "val_agreement" in row:
            val = [agreement_rows(row["val_agreement_without_cleanup"]), agreement_rows(row["val_agreement"])]
        for index, (before, after) in enumerate(
            zip(agreement_rows(row["agreement_without_cleanup"]), agreement_rows(row["agreement"]))
        ):
            on_val = " / ".join(found[index][4] for found in val) if val[0] else "-"
            lines.append("| " + " | ".join([*before, *after[3:], on_val]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget per task")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--runs", type=Path, help="a benchmarks.train_cpu output folder whose checkpoints to use")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-measure-agreement"))
    args = parser.parse_args(argv)
    data_root, machine = resolve_data_root(), cpu_name()
    out = args.out / time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / "measure_agreement.json"
    done = {row["task"]: row for row in _rows()}
    for task in args.tasks.split(","):
        done[task] = run_task(task, args.minutes, data_root, out, args.runs)
        rows = [done[t] for t in TASKS if t in done]
        atomic_write_text(path, json.dumps({"machine": machine, "rows": rows}, indent=1))
        atomic_write_text(RESULTS / "measure_agreement.md", table(rows, machine))
    print((RESULTS / "measure_agreement.md").read_text())


if __name__ == "__main__":
    main()

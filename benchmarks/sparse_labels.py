"""Training from scribbles: what strokes covering 1, 3 or 10 % of the pixels are worth, against complete masks at
the same CPU time and against the classic tool's method on the same strokes.

    python -m benchmarks.sparse_labels --minutes 3
    python -m benchmarks.sparse_labels --minutes 3 --tasks super-1 --shares 0.03

Per task (Super-1, Super-3, EBC-1 by default), in one run on one machine:
- the dense-label model: the demo's configuration (CS-UNet resnet18 + a shallow Swin side, embed 48, the fast recipe,
  batch 4) trained on the complete masks for ``--minutes``;
- per labelled share: scribbles simulated from the training and validation masks (``csunet.data.scribbles``, seed
  0, `csunet data scribble`), the same model and recipe trained on them for the same minutes (validation on the
  scribbles too: a user with strokes has no complete masks to validate on);
- per labelled share, the same strokes: a random forest on multiscale filter features (scikit-image's
  ``multiscale_basic_features``: Gaussian-smoothed intensity, gradient and Hessian eigenvalues at sigmas 1-16;
  scikit-learn's ``RandomForestClassifier`` with scikit-image's trainable-segmentation settings: 50 trees, depth
  10, 5 % of the samples per tree), the method of ilastik's pixel classification and Fiji's Trainable Weka
  Segmentation.
Every model is scored on the complete test masks with NASA's IoU. Writes benchmarks/results/sparse_labels.md/.json
and sparse_labels.png. Needs the NASA data.

    python -m benchmarks.sparse_labels --minutes 3 --shares 0.03 --pseudo-labels

adds, per share, the same model trained on the same strokes with ``pseudo_labels`` (``train/self_training.py``:
half the minutes on the strokes, then on strokes + the first model's confident predictions), into
sparse_labels_pseudo.md/.json/.png (the rows of the main table stay as they were measured).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.train_cpu import MODELS, CpuShare, cpu_name, had_machine, save_figure, scale_note
from csunet.data import SegmentationDataset, load_description
from csunet.data.masks import labelled_share
from csunet.data.pixel_classifier import fit_forest, forest_mask
from csunet.data.scribbles import write_scribble_dataset
from csunet.data.tasks import resolve_data_root
from csunet.evaluate import evaluate
from csunet.metrics import nasa_iou
from csunet.runs import require_run
from csunet.train import TrainConfig, train
from csunet.train.run import output_channels
from csunet.utils import atomic_write_text

TASKS = ["super-1", "super-3", "ebc-1"]
SHARES = [0.01, 0.03, 0.1]
MODEL = "cs_unet-shallow48"
STROKES = "CS-UNet, strokes"
SCALED = "CS-UNet, strokes, scale given"
"""Where the complete masks' plan shrinks the images, these rows train on the strokes at that scale (what a user
who knows how thick the layer is gives with ``--scale``), beside the strokes rows, whose plan guesses the widths."""
PSEUDO = "CS-UNet, strokes + pseudo-labels"
RESULTS = Path(__file__).parent / "results"


def masks_nasa_iou(truth: np.ndarray, predicted: np.ndarray, num_classes: int, loss: str) -> float:
    """NASA's IoU of a hard mask, as `csunet evaluate` computes it for a model trained with ``loss``: the predicted
    classes as saturated logits of the same channels."""
    channels = output_channels(num_classes, loss)
    one_hot = torch.nn.functional.one_hot(torch.from_numpy(predicted.astype(np.int64)), num_classes)
    one_hot = one_hot.permute(2, 0, 1)[None].float()
    if channels == 1:
        one_hot = one_hot[:, 1:2]
    logits = one_hot * 20 - 10
    return float(nasa_iou(logits, torch.from_numpy(truth.astype(np.int64))[None], activation="sigmoid")[0])


def random_forest(scribbles: Path, task_loss: str, seed: int) -> dict:
    """Fit on the training scribbles of the sparse dataset ``scribbles``, score on its complete test masks."""
    train_set = SegmentationDataset(scribbles, "train")
    test_set = SegmentationDataset(scribbles, "test", cache=False)
    classes = train_set.description.num_classes
    with CpuShare() as share:
        started = time.monotonic()
        forest = fit_forest((train_set.load(index) for index in range(len(train_set))), seed)
        fitted = time.monotonic() - started
        scores, truths, predictions = [], [], []
        for index in range(len(test_set)):
            image, mask = test_set.load(index)
            predicted = forest_mask(forest, image)
            scores.append(masks_nasa_iou(mask, predicted, classes, task_loss))
            truths.append(mask)
            predictions.append(predicted.astype(np.uint8))
    from csunet.metrics import masks_confusion, per_class_iou

    per_class = per_class_iou(masks_confusion(truths, predictions, classes)).tolist()
    return {"nasa_iou": float(np.mean(scores)), "fit_seconds": round(fitted, 1),
            "wall_seconds": round(time.monotonic() - started, 1),
            "per_class_iou": dict(zip(train_set.description.classes, per_class)), "cpu_share": share.record}  # fmt: skip


def cnn(data: str, data_root: Path, minutes: float, out: Path, name: str, **settings) -> dict:
    """The demo's model and recipe trained on ``data`` for ``minutes``; NASA IoU on the complete test masks."""
    architecture, model_settings = MODELS[MODEL]
    config = TrainConfig(data=data, data_root=str(data_root), model=architecture, model_settings=model_settings,
                         recipe="fast", max_steps=0, max_minutes=minutes, batch_size=4, out=str(out), name=name,
                         **settings)  # fmt: skip
    started = time.monotonic()
    with CpuShare() as share:
        summary = train(config, progress=False)
    wall = time.monotonic() - started
    test = evaluate(summary["best_checkpoint"], split="test", overlap=0.5, progress=False)
    steps = summary["steps"] + summary.get("pseudo_labels", {}).get("first_round_steps", 0)
    planned = TrainConfig.load(require_run(Path(summary["run_dir"])))
    return {"nasa_iou": test["nasa_iou"], "per_class_iou": test["per_class_iou"], "steps": steps,
            "best_val_iou": summary["best_val_iou"], "wall_seconds": round(wall, 1), "cpu_share": share.record,
            "loss": config.loss, "scale": planned.scale, "tile_size": planned.tile_size}  # fmt: skip


def run_task(
    task: str, shares: list[float], minutes: float, data_root: Path, out: Path, seed: int, pseudo: bool
) -> list[dict]:
    measured = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    common = {"task": task, "cpu": cpu_name(), "minutes": minutes, "measured": measured}
    dense = cnn(task, data_root, minutes, out, f"{task}-dense")
    rows = [common | {"method": "CS-UNet, complete masks", "share": 1.0} | dense]
    print(f"{task} dense: {dense['nasa_iou']:.3f}", flush=True)
    for share in shares:
        folder = write_scribble_dataset(task, out / "scribbles" / f"{task}-{share:g}", share, seed,
                                        data_root=data_root).parent  # fmt: skip
        achieved = _labelled_share(folder)
        strokes = cnn(str(folder), data_root, minutes, out, f"{task}-strokes-{share:g}")
        rows.append(common | {"method": STROKES, "share": share, "labelled": achieved} | strokes)
        if dense["scale"] != strokes["scale"]:
            scaled = cnn(
                str(folder), data_root, minutes, out, f"{task}-strokes-{share:g}-scaled", scale=dense["scale"]
            )
            rows.append(common | {"method": SCALED, "share": share, "labelled": achieved} | scaled)
            print(f"{task} {share:g}: CS-UNet at scale {dense['scale']:g} {scaled['nasa_iou']:.3f}", flush=True)
        if pseudo:
            filled = cnn(str(folder), data_root, minutes, out, f"{task}-pseudo-{share:g}", pseudo_labels=True)
            rows.append(common | {"method": PSEUDO, "share": share, "labelled": achieved} | filled)
            print(f"{task} {share:g}: with pseudo-labels {filled['nasa_iou']:.3f}", flush=True)
        forest = random_forest(folder, dense["loss"], seed)
        rows.append(common | {"method": "random forest, strokes", "share": share, "labelled": achieved} | forest)
        print(f"{task} {share:g}: CS-UNet {strokes['nasa_iou']:.3f}, forest {forest['nasa_iou']:.3f}", flush=True)
    return rows


def _labelled_share(folder: Path) -> float:
    dataset = SegmentationDataset(folder, "train", cache=False)
    return labelled_share(dataset.load(i)[1] for i in range(len(dataset)))


def table(rows: list[dict], options: str = "") -> str:
    machine = rows[0]["cpu"] if rows else "?"
    lines = [
        "# Training from scribbles" + (", with pseudo-labels" if options else ""),
        "",
        f"CPU: {machine}. Written by `python -m benchmarks.sparse_labels --minutes {rows[0]['minutes']:g}{options}` "
        "(benchmarks/sparse_labels.py says what each row ran). Every row of a task was measured in one run on "
        "this machine, one after the other, with nothing else running unless the last column says so. Test NASA "
        "IoU on the complete test masks. The CNN rows train the demo's model (CS-UNet resnet18 + shallow Swin, "
        "embed 48) with the fast recipe for the same minutes; the forest is scikit-image's multiscale filter "
        "features + scikit-learn's random forest (ilastik's and Trainable Weka's method) on the same strokes, "
        "its time the fit and the prediction of the test images.",
        "",
        "Strokes are as wide as the brush, not as the regions they mark: from 2026-12-03 on the plan takes the "
        "regions' widths, and so the working scale (`tile, scale`), from the regions a random forest grows from the "
        "strokes (`data/pixel_classifier.py`; EBC-1: 0.4, the Super tasks 1; rows before kept scale 1 on strokes, "
        "which on the Super tasks is the same). Where the complete masks' plan shrinks the images, `strokes, scale "
        "given` rows train on the same strokes at the complete masks' scale (`--scale`: what a user who knows how "
        "thick the layer is gives).",
        "",
        "| task | method | labelled share (asked / got) | test NASA IoU | ratio to complete masks | CPU minutes | "
        "steps | tile, scale | per-class IoU | alone |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        dense = next(r for r in rows if r["task"] == row["task"] and r["share"] == 1.0)
        share = "100 %" if row["share"] == 1.0 else f"{row['share']:.0%} / {row['labelled']:.2%}"
        per_class = ", ".join(f"{k} {v:.3f}" for k, v in row["per_class_iou"].items())
        alone = had_machine(row)
        lines.append(
            f"| {row['task']} | {row['method']} | {share} | {row['nasa_iou']:.3f} | "
            f"{row['nasa_iou'] / dense['nasa_iou']:.2f} | {row['wall_seconds'] / 60:.2f} | {row.get('steps', '')} | "
            f"{tile_cell(row)} | {per_class} | {'yes' if alone else 'shared' if alone is False else '?'} |"
        )
    lines += [
        "",
        "Targets (issue 29): at 3 % labelled, CS-UNet from strokes >= 0.9 x the complete-mask model; at "
        "every share, CS-UNet from strokes >= the forest + 0.05.",
        "",
    ]
    for task in dict.fromkeys(r["task"] for r in rows):
        of_task = [r for r in rows if r["task"] == task]
        dense = next(r for r in of_task if r["share"] == 1.0)
        for share in sorted({r["share"] for r in of_task} - {1.0}):
            strokes = next(r for r in of_task if r["share"] == share and r["method"] == STROKES)
            forest = next(r for r in of_task if r["share"] == share and r["method"].startswith("random"))
            ratio, margin = strokes["nasa_iou"] / dense["nasa_iou"], strokes["nasa_iou"] - forest["nasa_iou"]
            verdicts = [f"over the forest {margin:+.3f} ({'met' if margin >= 0.05 else 'missed'})"]
            if share == 0.03:
                verdicts.insert(0, f"ratio {ratio:.2f} ({'met' if ratio >= 0.9 else 'missed'})")
            scaled = next((r for r in of_task if r["share"] == share and r["method"] == SCALED), None)
            if scaled is not None:
                given_ratio = scaled["nasa_iou"] / dense["nasa_iou"]
                given_margin = scaled["nasa_iou"] - forest["nasa_iou"]
                verdicts.append(
                    f"with the scale given: {'ratio ' + format(given_ratio, '.2f') + ', ' if share == 0.03 else ''}"
                    f"over the forest {given_margin:+.3f}"
                )
            filled = next((r for r in of_task if r["share"] == share and r["method"] == PSEUDO), None)
            if filled is not None:
                verdicts.append(
                    f"pseudo-labels {filled['nasa_iou'] - strokes['nasa_iou']:+.3f} over strokes alone"
                )
            lines.append(f"- {task} at {share:.0%}: " + ", ".join(verdicts))
    return "\n".join(lines) + "\n"


def tile_cell(row: dict) -> str:
    """``128 at 0.35``; empty for the forest and for rows from before the CNN rows recorded their tile."""
    return f"{row['tile_size']}{scale_note(row)}" if "tile_size" in row else ""


def figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    figure_, axes = plt.subplots(2, len(tasks), figsize=(4 * len(tasks), 6.4), squeeze=False, dpi=100)
    styles = {STROKES: ("C0", "o"), "random forest, strokes": ("C1", "s"), "CS-UNet, complete masks": ("C2", "*"),
              PSEUDO: ("C3", "^"), SCALED: ("C4", "D")}  # fmt: skip
    for column, task in enumerate(tasks):
        of_task = [r for r in rows if r["task"] == task]
        top, bottom = axes[0, column], axes[1, column]
        for method, (colour, marker) in styles.items():
            chosen = sorted((r for r in of_task if r["method"] == method), key=lambda r: r["share"])
            if not chosen:
                continue
            if method == "CS-UNet, complete masks":
                top.axhline(chosen[0]["nasa_iou"], color=colour, linestyle="--", label=method)
            else:
                top.plot([100 * r["share"] for r in chosen], [r["nasa_iou"] for r in chosen], marker=marker,
                         color=colour, label=method)  # fmt: skip
            bottom.scatter([r["wall_seconds"] / 60 for r in chosen], [r["nasa_iou"] for r in chosen],
                           color=colour, marker=marker, label=method)  # fmt: skip
            for r in chosen:
                bottom.annotate(f"{r['share']:.0%}", (r["wall_seconds"] / 60, r["nasa_iou"]), fontsize=7,
                                xytext=(3, 3), textcoords="offset points")  # fmt: skip
        top.set_xscale("log")
        top.set_xticks([1, 3, 10], ["1 %", "3 %", "10 %"])
        top.set_title(task)
        top.set_xlabel("labelled share of the training pixels")
        bottom.set_xlabel("CPU minutes (fit + test prediction for the forest)")
        for ax in (top, bottom):
            ax.set_ylabel("test NASA IoU")
            ax.grid(alpha=0.3)
        top.legend(fontsize=7)
    figure_.tight_layout()
    save_figure(figure_, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="CPU minutes per CNN training run")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--shares", default=",".join(f"{s:g}" for s in SHARES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pseudo-labels", action="store_true", help="add CS-UNet rows trained with pseudo-labels")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default="runs/bench-sparse-labels")
    args = parser.parse_args(argv)
    data_root = resolve_data_root(args.data_root)
    out = Path(args.out) / time.strftime("%Y%m%d-%H%M%S")
    shares = [float(s) for s in args.shares.split(",")]
    stem = "sparse_labels_pseudo" if args.pseudo_labels else "sparse_labels"
    options = f" --shares {args.shares} --pseudo-labels" if args.pseudo_labels else ""
    results = RESULTS / f"{stem}.json"
    tasks = args.tasks.split(",")
    kept = (
        [r for r in json.loads(results.read_text())["rows"] if r["task"] not in tasks] if results.is_file() else []
    )
    rows = list(kept)
    for task in tasks:
        load_description(task, data_root)  # a wrong name fails before any training
    for task in tasks:
        rows += run_task(task, shares, args.minutes, data_root, out, args.seed, args.pseudo_labels)
        rows.sort(key=lambda r: (TASKS.index(r["task"]) if r["task"] in TASKS else 99, r["share"], r["method"]))
        atomic_write_text(results, json.dumps({"rows": rows}, indent=1) + "\n")
        atomic_write_text(RESULTS / f"{stem}.md", table(rows, options))
        figure(rows, RESULTS / f"{stem}.png")
    print(table(rows, options))


if __name__ == "__main__":
    main()

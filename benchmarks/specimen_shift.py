"""Why do EBC-3 and Super-4 fail on their test images? How the test images' intensities differ from the training
images', per NASA task: grey-level percentiles of every image and of every class's pixels, split by split.

    python -m benchmarks.specimen_shift
    python -m benchmarks.specimen_shift --panels ebc-3 "before=RUN/checkpoints/best.ckpt;after=RUN2/..."

Writes benchmarks/results/specimen_shift.md/.json and specimen_shift.png (per task: grey-level histograms of the
training and test images, each class apart); with ``--panels``, specimen_shift_<task>_panels.png: for two test
images, the image, the truth and each checkpoint's errors (white TP, black TN, red FP, cyan FN). Needs the NASA data ($CSUNET_DATA or ../shared). Reads files only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.train_cpu import save_figure
from csunet.data import SegmentationDataset
from csunet.data.masks import IGNORE_INDEX
from csunet.data.tasks import resolve_data_root
from csunet.data.transforms import EBC_VALIDATION_CROP
from csunet.utils import atomic_write_bytes, atomic_write_text

TASKS = ["super-1", "super-2", "super-3", "super-4", "ebc-1", "ebc-2", "ebc-3"]
SPLITS = ("train", "val", "test")
RESULTS = Path(__file__).parent / "results"
BINS = np.linspace(0, 1, 65)


def split_statistics(task: str, split: str, data_root: Path) -> dict:
    """Per image: grey-level percentiles 1/50/99 of the image and the median of each class's pixels; over the
    split: a histogram of each class's grey levels (density)."""
    dataset = SegmentationDataset(f"{task}-3class" if task.startswith("ebc") else task, split, data_root=data_root)
    classes = dataset.description.classes
    images, histograms = [], {name: np.zeros(len(BINS) - 1) for name in classes}
    for index, name in enumerate(dataset.names()):
        image, mask = dataset.load(index)
        grey = image.mean(axis=-1)
        p1, p50, p99 = np.percentile(grey, [1, 50, 99])
        row = {"image": name, "p1": float(p1), "p50": float(p50), "p99": float(p99), "class_median": {}}
        for value, cls in enumerate(classes):
            inside = grey[(mask == value) & (mask != IGNORE_INDEX)]
            if inside.size:
                row["class_median"][cls] = float(np.median(inside))
                histograms[cls] += np.histogram(inside, BINS)[0]
        images.append(row)
    return {
        "images": images,
        "histograms": {cls: (h / max(h.sum(), 1)).tolist() for cls, h in histograms.items() if h.sum()},
    }


def contrast_ratio(row: dict, foreground: str, background: str) -> float | None:
    """How far one class's median grey is from another's, relative to the image's 1-99 % range."""
    medians = row["class_median"]
    if foreground not in medians or background not in medians:
        return None
    return (medians[foreground] - medians[background]) / max(row["p99"] - row["p1"], 1e-6)


def table(results: dict) -> str:
    lines = [
        "# Train and test images of the NASA tasks: how their grey levels differ",
        "",
        "Command: `python -m benchmarks.specimen_shift` (reads the images and masks only; no model). For each split:",
        "the median over its images of the 1st, 50th and 99th grey-level percentile (0-1), and the median grey of",
        "each class's pixels (EBC with cracks apart). `contrast`: (median of the first non-background class minus the",
        "background's) over the image's 1-99 % range, median over images: where it keeps its sign and size while the",
        "raw levels move, a per-image stretch of the 1-99 % range puts the classes back where training saw them.",
        "",
        "| task | split | images | p1 | p50 | p99 | class medians | contrast |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task, splits in results.items():
        for split, stats in splits.items():
            rows = stats["images"]
            classes = list(stats["histograms"])
            medians = {
                cls: np.median([r["class_median"][cls] for r in rows if cls in r["class_median"]])
                for cls in classes
            }
            contrasts = [c for r in rows if (c := contrast_ratio(r, classes[1], classes[0])) is not None]
            lines.append(
                f"| {task} | {split} | {len(rows)} | "
                + " | ".join(f"{np.median([r[k] for r in rows]):.3f}" for k in ("p1", "p50", "p99"))
                + " | "
                + ", ".join(f"{cls} {value:.3f}" for cls, value in medians.items())
                + f" | {np.median(contrasts):+.2f} |"
            )
    return "\n".join(lines) + "\n"


def figure(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(16, 6.4), dpi=100)
    centres = (BINS[:-1] + BINS[1:]) / 2
    for ax, (task, splits) in zip(axes.flat, results.items()):
        for split, style in (("train", "-"), ("test", "--")):
            for index, (cls, histogram) in enumerate(splits[split]["histograms"].items()):
                ax.plot(centres, histogram, style, color=f"C{index}", label=f"{split} {cls}")
        ax.set_title(task)
        ax.set_xlabel("grey level")
        ax.legend(fontsize=7)
    axes.flat[-1].axis("off")
    fig.suptitle("Grey levels of each class: training images (solid) and test images (dashed)")
    fig.tight_layout()
    save_figure(fig, path)


def error_panels(task: str, checkpoints: dict[str, str], path: Path, images: int = 2) -> None:
    """What each checkpoint predicts where, on the first ``images`` test images, as rows of captioned panels."""
    from csunet.checkpoint import load_checkpoint
    from csunet.inference import sliding_window_logits
    from csunet.metrics import predicted_classes
    from csunet.render import captioned_row, colour_mask, foreground_error_panel, png_bytes, to_rgb8
    from csunet.scoring import checkpoint_dataset

    loaded = {label: load_checkpoint(path) for label, path in checkpoints.items()}
    plain = SegmentationDataset(task, "test", data_root=resolve_data_root())
    rows = []
    for index in range(images):
        image, truth = plain.load(index)
        box = EBC_VALIDATION_CROP  # NASA's evaluation window of EBC images
        crop = (
            np.s_[box["y_min"] : box["y_max"], box["x_min"] : box["x_max"]] if task.startswith("ebc") else np.s_[:]
        )
        truth = truth[crop]
        panels = [
            (plain.names()[index][:28], to_rgb8(image[crop])),
            ("truth", colour_mask(truth, plain.description.class_colours)),
        ]
        for label, model in loaded.items():
            seen, _ = checkpoint_dataset(model, checkpoints[label], task, "test", resolve_data_root())[index]
            logits = sliding_window_logits(model.model, seen, model.meta.tile_size, 0.5)[None]
            predicted = predicted_classes(logits)[0].numpy().astype(np.uint8)
            panels.append(
                (
                    label,
                    foreground_error_panel(predicted, truth),
                )
            )
        rows.append(captioned_row(panels))
    width = max(row.shape[1] for row in rows)
    stacked = np.concatenate(
        [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    )
    atomic_write_bytes(path, png_bytes(stacked))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--panels", nargs=2, metavar=("TASK", "LABEL=CHECKPOINT;..."))
    args = parser.parse_args(argv)
    if args.panels:
        task, spec = args.panels
        checkpoints = dict(item.split("=", 1) for item in spec.split(";"))
        error_panels(task, checkpoints, RESULTS / f"specimen_shift_{task}_panels.png")
        return
    data_root = resolve_data_root()
    results = {task: {s: split_statistics(task, s, data_root) for s in SPLITS} for task in args.tasks.split(",")}
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "specimen_shift.json", json.dumps(results, indent=1))
    atomic_write_text(RESULTS / "specimen_shift.md", table(results))
    figure(results, RESULTS / "specimen_shift.png")
    print(table(results))


if __name__ == "__main__":
    main()

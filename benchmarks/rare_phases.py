"""A rare-class test bed anyone can rebuild: synthetic micrographs of a two-phase grain structure with carbides,
sparse small inclusions and a few thin cracks, the classes at about 50 / 40 / 9 / 0.5 / 0.3 % of the pixels; and
the benchmark that trains on it for 10 CPU minutes and reports every class's test IoU.

    python -m benchmarks.rare_phases --make OUT          # the data set only (dataset.yaml, train/val/test)
    python -m benchmarks.rare_phases --minutes 10        # the benchmark: benchmarks/results/rare_phases.md/.json

The classes are told apart by grey level and by shape: inclusions (round, ~5 px) and cracks (lines 2 px wide) are
both dark, the second phase's grains are darker than the matrix's by a varying amount, every grain has its own
brightness offset and the image a brightness gradient, blur and noise. Seeded: the same seed gives the same files.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.spatial import cKDTree

CLASSES = {"matrix": 0, "second_phase": 1, "carbide": 2, "inclusion": 3, "crack": 4}
TARGET_FRACTIONS = {"matrix": 0.503, "second_phase": 0.40, "carbide": 0.09, "inclusion": 0.005, "crack": 0.003}
"""Share of the pixels of each class in every image (matrix: what is left)."""
GREY = {"matrix": 0.62, "second_phase": 0.45, "carbide": 0.85, "inclusion": 0.18, "crack": 0.12}
SPLITS = {"train": 8, "val": 3, "test": 3}
SIZE = (768, 1024)
"""Height, width of the images (large: validating them whole is what makes a validation expensive)."""


def _grains(rng: np.random.Generator, shape: tuple[int, int], grain: float) -> np.ndarray:
    """A Voronoi tessellation: each pixel's grain index."""
    count = max(2, int(shape[0] * shape[1] / grain**2))
    seeds = rng.uniform((0, 0), shape, size=(count, 2))
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return cKDTree(seeds).query(np.stack([rows.ravel(), cols.ravel()], 1))[1].reshape(shape)


def _disc(mask: np.ndarray, centre: np.ndarray, radius: float, value: int, onto: tuple[int, ...]) -> None:
    top, left = (max(0, int(c - radius)) for c in centre)
    bottom, right = (int(c + radius) + 1 for c in centre)
    window = mask[top:bottom, left:right]
    rows, cols = np.mgrid[top : top + window.shape[0], left : left + window.shape[1]]
    inside = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2
    window[inside & np.isin(window, onto)] = value


def _crack(mask: np.ndarray, rng: np.random.Generator, value: int, budget: int) -> int:
    """A wandering line two pixels wide, drawn step by step across part of the image, of at most ``budget``
    pixels; the pixels it drew."""
    drawn = 0
    position = rng.uniform((0, 0), mask.shape)
    heading = rng.uniform(0, 2 * np.pi)
    for _ in range(int(rng.integers(80, 240))):
        heading += rng.normal(0, 0.15)
        position = position + (np.sin(heading), np.cos(heading))
        row, col = int(position[0]), int(position[1])
        if not (0 <= row < mask.shape[0] - 1 and 0 <= col < mask.shape[1] - 1) or drawn >= budget:
            return drawn
        window = mask[row : row + 2, col : col + 2]
        drawn += int((window != value).sum())
        window[...] = value
    return drawn


def make_image(rng: np.random.Generator, shape: tuple[int, int] = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 grey image, uint8 index mask) with the classes near ``TARGET_FRACTIONS``."""
    pixels = shape[0] * shape[1]
    grains = _grains(rng, shape, grain=60)
    order = rng.permutation(grains.max() + 1)
    sizes = np.bincount(grains.ravel())
    # whole grains to the second phase until it holds its share of what the smaller classes will leave
    painted_over = sum(TARGET_FRACTIONS[name] for name in ("carbide", "inclusion", "crack"))
    share = TARGET_FRACTIONS["second_phase"] / (1 - painted_over)
    second = order[: int(np.searchsorted(np.cumsum(sizes[order]), share * pixels)) + 1]
    mask = np.where(np.isin(grains, second), CLASSES["second_phase"], CLASSES["matrix"]).astype(np.uint8)
    # carbides on the grain boundaries' side of either phase, inclusions anywhere, cracks last (they cut through)
    boundary = np.argwhere(ndimage.morphological_gradient(grains, size=3) > 0)
    for name, radii, sites in (("carbide", (3, 8), boundary), ("inclusion", (2, 4), None)):
        while (mask == CLASSES[name]).sum() < TARGET_FRACTIONS[name] * pixels:
            centre = sites[rng.integers(len(sites))] if sites is not None else rng.uniform((0, 0), shape)
            _disc(mask, centre, rng.uniform(*radii), CLASSES[name], (CLASSES["matrix"], CLASSES["second_phase"]))
    cracked, target = 0, int(TARGET_FRACTIONS["crack"] * pixels)
    while cracked < target:
        cracked += _crack(mask, rng, CLASSES["crack"], target - cracked)
    grey = np.choose(mask, [GREY[name] for name in CLASSES]).astype(np.float32)
    grey += rng.normal(0, 0.05, grains.max() + 1)[grains] * (mask <= CLASSES["second_phase"])  # grain contrast
    rows, cols = np.mgrid[: shape[0], : shape[1]] / max(shape)
    grey += rng.uniform(-0.08, 0.08) * rows + rng.uniform(-0.08, 0.08) * cols  # uneven illumination
    grey = ndimage.gaussian_filter(grey, 1.0) + rng.normal(0, 0.04, shape)
    return (np.clip(grey, 0, 1) * 255).astype(np.uint8), mask


def make_dataset(
    root: Path, seed: int = 0, splits: dict[str, int] = SPLITS, shape: tuple[int, int] = SIZE
) -> Path:
    """Write the set under ``root`` (``<split>/images``, ``<split>/masks``, ``dataset.yaml``); its description."""
    rng = np.random.default_rng(seed)
    lines = ["name: rare-phases", "classes:"] + [f"  {name}: {value}" for name, value in CLASSES.items()]
    lines += ["background: matrix", "splits:"]
    for split, count in splits.items():
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "masks").mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, mask = make_image(rng, shape)
            Image.fromarray(image).save(root / split / "images" / f"{split}{index:02d}.png")
            Image.fromarray(mask).save(root / split / "masks" / f"{split}{index:02d}.png")
        lines += [f"  {split}:", f"    images: {split}/images", f"    masks: {split}/masks"]
    (root / "dataset.yaml").write_text("\n".join(lines) + "\n")
    return root / "dataset.yaml"


RESULTS = Path(__file__).parent / "results"
VARIANTS = {
    "every class equally often (temperature 0)": {"class_temperature": 0.0, "class_weights": "none"},
    "tempered inverse frequency (temperature 0.5)": {"class_temperature": 0.5, "class_weights": "none"},
    "temperature 0.5, loss weighted the same way": {"class_temperature": 0.5, "class_weights": "auto"},
}
"""Settings of the fast recipe compared on the set (the rest as the recipe has them). The fast recipe as shipped
is the last: it weighs the loss on data with a class under 1 % of the pixels (``class_weights: rare``)."""


def run_variant(description: Path, settings: dict, minutes: float, out: Path) -> dict:
    from benchmarks.train_cpu import CpuShare, curve
    from csunet.train import TrainConfig, train

    config = TrainConfig(data=str(description), model="cs_unet", recipe="fast", max_steps=0, max_minutes=minutes,
                         model_settings={"encoder": "resnet18", "depths": "shallow", "embed_dim": 48, "window_size": 8},
                         out=str(out), name="-".join(f"{k}{v}" for k, v in settings.items()), **settings)  # fmt: skip
    with CpuShare() as share:
        summary = train(config, progress=False)
    return {
        "settings": settings, "measured": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "cpu_share": share.record,
        "steps": summary["steps"], "epochs": summary["epochs"], "test": summary["test"],
        "validation": summary.get("full_validation"),
        "class_centred_crops": summary.get("class_centred_crops"), "curve": curve(Path(summary["run_dir"])),
    }  # fmt: skip


def table(rows: dict, minutes: float, machine: str, fractions: dict) -> str:
    names = list(CLASSES)
    lines = [
        f"# Rare classes: synthetic micrographs, {minutes:g} CPU minutes each, from scratch",
        "",
        f"CPU: {machine}. Command: `python -m benchmarks.rare_phases --minutes {minutes:g}`. Data: "
        "`benchmarks/rare_phases.py`, seed 0:",
        f"{SPLITS['train']} training, {SPLITS['val']} validation and {SPLITS['test']} test images of "
        f"{SIZE[1]}x{SIZE[0]}; share of the training pixels: "
        + ", ".join(f"{name} {fractions[name]:.2%}" for name in names)
        + ".",
        "Model: CS-UNet resnet18 + shallow Swin (embed 48), the fast recipe (minutes alone as budget); rows differ",
        "only in how class-centred crops are shared out among the classes (`train/sampling.py`) and, in the last, in",
        "the loss's class weights (`--class-weights auto`: inverse frequency ** 0.5; the fast recipe as shipped, whose",
        "`--class-weights rare` weighs the loss on data with a class under 1 % of the pixels). Test IoU per class",
        "over all test pixels; `cores used / others'`: this run's CPU and every other process's meanwhile.",
        "",
        "| sampling | " + " | ".join(names) + " | mIoU all classes | validation: mIoU all classes (rarest two) | "
        "steps | cores used / others' | measured |",
        "|---|" + "---|" * (len(names) + 5),
    ]
    for label, row in rows.items():
        ious = row["test"]["per_class_iou"]
        mean = sum(ious.values()) / len(ious)
        share = row["cpu_share"]
        lines.append(
            f"| {label} | " + " | ".join(f"{ious[name]:.3f}" for name in names)
            + f" | {mean:.3f} | {_validation_cell(row.get('validation'), names)} | {row['steps']} | "
            f"{share['cores_used']:.2f} / {share['others_cores']} | "
            f"{row['measured']} |"
        )  # fmt: skip
    return "\n".join(lines) + "\n"


def _validation_cell(validation: dict | None, names: list[str]) -> str:
    """The mean class IoU over the whole validation split, and its two rarest classes' (the choice between
    variants is made on validation)."""
    if not validation:
        return "not recorded"
    ious = validation["per_class_iou"]
    rarest = ", ".join(f"{name} {ious[name]:.3f}" for name in names[-2:])
    return f"{sum(ious.values()) / len(ious):.3f} ({rarest})"


def main(argv: list[str] | None = None) -> None:
    from benchmarks.train_cpu import cpu_name
    from csunet.utils import atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--make", type=Path, help="only write the data set into this folder")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--variants", default=";".join(VARIANTS))
    parser.add_argument("--out", type=Path, default=Path("runs/bench-rare-phases"))
    args = parser.parse_args(argv)
    if args.make:
        print(make_dataset(args.make))
        return
    out = args.out / time.strftime("%Y%m%d-%H%M%S")
    description = make_dataset(out / "data")
    masks = [np.asarray(Image.open(p)) for p in sorted((out / "data" / "train" / "masks").glob("*.png"))]
    counts = np.bincount(np.concatenate([m.ravel() for m in masks]), minlength=len(CLASSES))
    fractions = {name: float(counts[value] / counts.sum()) for name, value in CLASSES.items()}
    path = RESULTS / "rare_phases.json"
    rows = json.loads(path.read_text())["rows"] if path.is_file() else {}
    machine = cpu_name()
    for label in args.variants.split(";"):
        rows[label] = run_variant(description, VARIANTS[label], args.minutes, out)
        atomic_write_text(path, json.dumps({"machine": machine, "fractions": fractions, "rows": rows}, indent=1))
        atomic_write_text(RESULTS / "rare_phases.md", table(rows, args.minutes, machine, fractions))
    print((RESULTS / "rare_phases.md").read_text())


if __name__ == "__main__":
    main()

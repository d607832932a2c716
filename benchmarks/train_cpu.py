"""Time to accuracy on a CPU: CS-UNet and UNet++ (resnet18, from scratch, batch 4) under a fixed wall-clock budget
per NASA task, with the paper's recipe and the fast one; and an ablation of the fast recipe on Super-1.

    python -m benchmarks.train_cpu --minutes 5 --tasks super-1,ebc-1 --recipes paper,fast --models cs_unet,unet_plusplus
    python -m benchmarks.train_cpu --minutes 5 --ablation

Writes benchmarks/results/train_cpu.md/.json/.png (test metrics, and validation IoU against minutes) and
recipe_ablation.md/.json. Rows of runs not repeated are kept, so a task can be rerun alone; every table names the
CPU. Needs the NASA data ($CSUNET_DATA or ../shared).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import time
from pathlib import Path

import torch

from csunet.data.tasks import resolve_data_root
from csunet.evaluate import evaluate
from csunet.runs import require_run
from csunet.train import TrainConfig, train
from csunet.train.recipes import RECIPES
from csunet.utils import atomic_write_bytes, atomic_write_text

TASKS = ["super-1", "super-2", "super-3", "super-4", "ebc-1", "ebc-2", "ebc-3"]
MODELS = {"cs_unet": ("cs_unet", {"encoder": "resnet18", "depths": "intermediate", "window_size": 8}),
          "cs_unet-shallow48": ("cs_unet", {"encoder": "resnet18", "depths": "shallow", "embed_dim": 48,
                                            "window_size": 8}),
          "unet_plusplus": ("unet_plusplus", {"encoder": "resnet18"})}  # fmt: skip
"""Benchmark name -> registry model and settings; cs_unet-shallow48 is CS-UNet with a smaller Swin side."""
PAPER_CROPS_PER_EPOCH = 48
"""What the demo used with the paper's recipe: 12 steps between validations."""
POOLED = {"loss": "bce-dice"}
"""The paper's Dice over all classes at once: the fast recipe's loss until the ablation below chose bce-class-dice."""
RANDOM_CROPS = {"class_crops": 0.0} | POOLED
"""The fast recipe before it centred half its crops on classes."""
ABLATION = {
    "paper, PyTorch's default init": {"recipe": "paper", "init": "pytorch"},
    "paper": {"recipe": "paper"},
    "fast as first set: AdamW 1e-3, decay 0.05, 256 tiles": {"recipe": "fast", "lr": 1e-3, "weight_decay": 0.05,
                                                             "tile_size": 256} | RANDOM_CROPS,
    "AdamW 4e-4, decay 0.01, 256 tiles": {"recipe": "fast", "lr": 4e-4, "weight_decay": 0.01, "tile_size": 256}
                                         | RANDOM_CROPS,
    "AdamW 4e-4, decay 0.01, 128 tiles": {"recipe": "fast", "lr": 4e-4, "weight_decay": 0.01, "tile_size": 128}
                                         | RANDOM_CROPS,
    "Adam 2e-4, no decay, 128 tiles": {"recipe": "fast", "optimizer": "adam", "lr": 2e-4, "weight_decay": 0.0,
                                       "tile_size": 128} | RANDOM_CROPS,
    "fast before this ablation (class-centred crops, pooled Dice)": {"recipe": "fast"} | POOLED,
    "... without gradient clipping": {"recipe": "fast", "grad_clip": 0.0} | POOLED,
    "... without class-centred crops": {"recipe": "fast"} | RANDOM_CROPS,
    "... with a smaller Swin side (embed 48, one block per stage)": {"recipe": "fast", "model_settings": {
        "embed_dim": 48, "depths": "shallow"}} | POOLED,
    "... with one Dice per class (bce-class-dice): fast as shipped": {"recipe": "fast"},
}  # fmt: skip
MODIFIERS = {"wide": {"photometric": "wide"}, "mild": {"photometric": "mild"}, "equalize": {"intensity": "equalize"},
             "raw": {"intensity": "none"}, "weighted": {"class_weights": "auto"}, "seed1": {"seed": 1},
             "seed2": {"seed": 2}, "fullscale": {"scale": 1.0}}  # fmt: skip
"""`--recipes fast+equalize+wide`: a recipe with these settings changed (labels name what a row ran with)."""
RESULTS = Path(__file__).parent / "results"
FAST_TILE = RECIPES["fast"]["tile_size"]
"""The tile of fast rows measured before rows recorded the tile the plan chose (the plan never widened it then)."""


def cpu_name() -> str:
    try:
        found = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        name = next(line.split(":", 1)[1].strip() for line in found.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        name = platform.processor() or platform.machine()
    return f"{name}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def machine_busy_seconds() -> float | None:
    """CPU-seconds every process of this machine has spent busy since boot (/proc/stat; None elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class CpuShare:
    """What CPU a stretch of this process got: its user and system seconds over the wall time (cores in use), and
    the cores that every other process on the machine used meanwhile (the load beside it)."""

    def __enter__(self) -> CpuShare:
        self.started, self.usage, self.busy = (
            time.monotonic(),
            resource.getrusage(resource.RUSAGE_SELF),
            machine_busy_seconds(),
        )
        return self

    def __exit__(self, *exc) -> None:
        wall = time.monotonic() - self.started
        usage, busy = resource.getrusage(resource.RUSAGE_SELF), machine_busy_seconds()
        user, system = usage.ru_utime - self.usage.ru_utime, usage.ru_stime - self.usage.ru_stime
        self.record = {
            "cores_used": round((user + system) / wall, 2),
            "system_share": round(system / max(user + system, 1e-9), 3),
            "others_cores": None
            if busy is None
            else round(max(0.0, (busy - self.busy - user - system) / wall), 2),
            "cores": os.cpu_count(),
        }


ALONE_BELOW = 0.25
"""A row had the machine to itself when all other processes together used less than this many cores."""


def had_machine(row: dict) -> bool | None:
    share = row.get("cpu_share")
    return None if not share or share["others_cores"] is None else share["others_cores"] < ALONE_BELOW


def curve(run_dir: Path) -> list[tuple[float, float]]:
    """(minutes since the start, validation NASA IoU) after every validation, from metrics.csv."""
    with open(run_dir / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    points, elapsed = [], 0.0
    for row in rows:
        elapsed += float(row["epoch_seconds"]) / 60
        points.append((round(elapsed, 3), float(row["val_iou"])))
    return points


GPU_SETTINGS = {"accelerator": "gpu", "precision": "bf16-mixed", "tile_size": 512, "batch_size": 8}
"""With --gpu: the paper's tile size and bf16 autocast; no torch.compile, whose ~2 minutes of compiling do not pay
within runs of seconds."""


def run_one(task: str, model: str, minutes: float, data_root: Path, out: Path, **settings) -> dict:
    settings_given = dict(settings)
    init = settings_given.pop("init", "swin")
    architecture, model_settings = MODELS[model]
    model_settings = model_settings | settings_given.pop("model_settings", {})
    recipe = settings_given.get("recipe", "paper")
    variant = "+".join(str(v) for k, v in sorted(settings_given.items()) if k != "model_settings")
    if recipe == "paper":
        settings_given.setdefault("crops_per_epoch", PAPER_CROPS_PER_EPOCH)
    # the paper's recipe on the CPU as the demo used it: 256 crops; the fast recipe brings its own (128)
    # the fast recipe's step budget (600) makes the demo machine-independent; here the budget is the minutes alone
    settings = {"tile_size": 256} if recipe == "paper" else {"max_steps": 0}
    settings = settings | {"batch_size": 4} | settings_given
    config = TrainConfig(data=task, data_root=str(data_root), model=architecture, model_settings=model_settings,
                         max_minutes=minutes, out=str(out), name=f"{task}-{model}-{variant}", **settings)  # fmt: skip
    if init == "pytorch":  # the ablation's baseline: the fresh layers at PyTorch's defaults, as before issue 17
        from csunet.models import swin_unet

        keep, swin_unet.init_like_swin = swin_unet.init_like_swin, lambda module: None
    started = time.monotonic()
    try:
        with CpuShare() as share:
            summary = train(config, progress=False)
    finally:
        if init == "pytorch":
            swin_unet.init_like_swin = keep
    wall = time.monotonic() - started
    planned = TrainConfig.load(require_run(Path(summary["run_dir"])))  # with what the plan derived
    test = evaluate(summary["best_checkpoint"], split="test", overlap=0.5, progress=False)
    return {
        "task": task, "model": model, "recipe": recipe, "measured": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "cpu": cpu_name(), "tile_size": planned.tile_size, "scale": planned.scale,
        "settings": settings | {"init": init, "class_crops": config.class_crops, "model_settings": model_settings,
                                "loss": config.loss, "intensity": config.intensity, "photometric": config.photometric,
                                "class_temperature": config.class_temperature,
                                "class_weights": config.class_weights},
        "nasa_iou": test["nasa_iou"], "miou_without_background": test["miou_without_background"],
        "per_class_iou": test["per_class_iou"], "epochs": summary["epochs"], "steps": summary["steps"],
        "best_val_iou": summary["best_val_iou"], "wall_seconds": round(wall, 1), "curve": curve(Path(summary["run_dir"])),
        "cpu_share": share.record, "best_checkpoint": summary["best_checkpoint"], "tta": test["tta"],
    }  # fmt: skip


def result_table(rows: list[dict], minutes: float, machine: str, gpu: bool = False) -> str:
    """The rows of ``machine`` first, then those of other machines, each machine in a section of its own with its
    own means: only rows of one section compare."""
    device = f"GPU ({torch.cuda.get_device_name(0)}), bf16 autocast" if gpu else "CPU"
    lines = [
        f"# Time to accuracy: {minutes:g} {'GPU' if gpu else 'CPU'} minutes per task, from scratch",
        "",
        f"Command: `python -m benchmarks.train_cpu --minutes {minutes:g} --tasks ... --recipes paper,fast --models "
        f"cs_unet,cs_unet-shallow48,unet_plusplus{' --gpu' if gpu else ''}`. Each row is one run; rows of earlier "
        "runs are kept, one section per machine, so compare rows within a section (and their steps; `measured` is "
        "UTC, `earlier` before rows were stamped).",
        "Models: CS-UNet (resnet18 + intermediate Swin-T, window 8; cs_unet-shallow48: one Swin block per stage, "
        "embed 48) and UNet++ (resnet18), batch "
        f"{8 if gpu else 4}, no pretrained weights. Recipes: `paper` (bce-dice, Adam 2e-4, two stages;",
        f"{'512' if gpu else '256'} crops, 48 between validations, as the demo used it) and `fast` "
        f"({'512' if gpu else '128'} crops unless the plan derives larger, AdamW 4e-4,",
        "weight decay 0.01, warm-up over 5 % of the budget, cosine decay to zero at its end, gradient clipping at 1,",
        "half the crops centred on a pixel of a class other than the background, one Dice per class (bce-class-dice;",
        "`fast, pooled Dice` rows ran before), validation paced to about a fifth of the time; train/recipes.py).",
        "The budget of every run is the minutes alone (the fast recipe's 600-step cap, which keeps the demo the same",
        "on every machine, is lifted here; rows measured before 2026-12-01 kept it). `fast, random crops only` rows",
        "were measured before the fast recipe centred crops on classes; fast rows measured before 2026-12-02 drew the",
        "class of a centred crop uniformly among those in the image, later ones by tempered inverse pixel frequency",
        "(`--class-temperature 0.5`). `mild`/`wide jitter`: the photometric augmentation; `equalize`: per-image",
        "histogram equalisation (`--recipes fast+equalize+wide`); `class-weighted loss`: `--class-weights auto`",
        "(`--recipes fast+weighted`: each class weighted by its inverse pixel frequency ** 0.5, as the crops are).",
        "`cores used / others'`: the CPU this run got (user",
        "+ system seconds over wall seconds) and what every other process used meanwhile; `shared` when the others",
        f"used {ALONE_BELOW} of a core or more: such a row did not have the machine to itself; `sys`: the run's",
        "CPU time spent in the kernel (page faults included). UNet++ on the Super tasks ran 136-170 steps in the",
        "rows of 2026-12-01 (CPU share not recorded) and 545-588 steps rerun alone on 2026-12-03, with 2-3 % of its",
        "time in the kernel: those rows had not had the machine; the kernel is not what slows training here.",
        "`coarser scale`: the plan shrank the images (`tile, scale`: 128 at 0.35 is a 128-pixel tile on images",
        "shrunk to 0.35, from 2026-12-03 on: EBC's oxide layers; the Super tasks keep scale 1, so their rows stand;",
        "EBC rows without it measured since then ran at scale 1 given, `--recipes fast+fullscale`, to compare).",
        "`TTA flips`: the test images predicted four times per tile, flipped, logits averaged (the fast recipe's",
        "`--tta auto` from 2026-12-03 on; rows without it: one pass per tile; results/tta.md rescores earlier rows).",
        "Test NASA IoU: pooled over output channels per image, mean over test images (EBC: one sigmoid channel, so",
        "the oxide IoU). mIoU w/o bg: mean of the non-background classes' IoU over all test pixels.",
    ]
    machines = sorted({row["cpu"] for row in rows}, key=lambda name: (name != machine, name))
    for cpu in machines:
        section = [row for row in rows if row["cpu"] == cpu]
        lines += [
            "",
            f"## {device}: {cpu}",
            "",
            "| task | model | recipe | test NASA IoU | mIoU w/o bg | per-class IoU | steps | epochs | tile, scale | wall s "
            "| cores used / others' | measured |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in section:
            classes = ", ".join(f"{k} {v:.3f}" for k, v in row["per_class_iou"].items())
            lines.append(
                f"| {row['task']} | {row['model']} | {recipe_label(row)} | {row['nasa_iou']:.4f} | "
                f"{row['miou_without_background']:.4f} | {classes} | {row['steps']} | {row['epochs']} | "
                f"{row.get('tile_size', row['settings'].get('tile_size', FAST_TILE))}{scale_note(row)} | "
                f"{row['wall_seconds']:.0f} | "
                f"{share_cell(row)} | {row.get('measured', 'earlier')} |"
            )
        by_recipe: dict[tuple[str, str], list[float]] = {}
        for row in section:
            by_recipe.setdefault((row["model"], recipe_label(row)), []).append(row["nasa_iou"])
        lines += ["", "Mean test NASA IoU over the tasks each model and recipe ran (marked rows included):", ""]
        lines += [f"- {model}, {recipe}: {sum(ious) / len(ious):.4f} over {len(ious)} tasks"
                  for (model, recipe), ious in sorted(by_recipe.items())]  # fmt: skip
    lines += ["", f"Validation NASA IoU against minutes, the rows of {machine}: `train_cpu.png`."]
    return "\n".join(lines) + "\n"


def scale_note(row: dict) -> str:
    """`` at 0.35`` for a run that worked on images shrunk by the plan (rows from before scales existed had 1)."""
    return "" if row.get("scale", 1.0) == 1 else f" at {row['scale']:g}"


def share_cell(row: dict) -> str:
    """``1.93 / 0.02, 2 % sys``: the cores this run used, those all other processes used meanwhile, and the share of
    this run's CPU time spent in the kernel; marked ``shared`` when the others used a quarter of a core or more;
    ``not recorded`` for rows from before this was measured."""
    share = row.get("cpu_share")
    if not share:
        return "not recorded"
    others = "?" if share["others_cores"] is None else f"{share['others_cores']:.2f}"
    kernel = f", {100 * share['system_share']:.0f} % sys" if "system_share" in share else ""
    return f"{share['cores_used']:.2f} / {others}{kernel}" + ("" if had_machine(row) is not False else " shared")


def recipe_label(row: dict) -> str:
    """What the row ran, and ``, TTA flips`` when its test images were predicted with test-time augmentation (rows
    from before that was recorded had none)."""
    tta = row.get("tta", "none")
    return training_label(row) + ("" if tta == "none" else f", TTA {tta}")


def training_label(row: dict) -> str:
    """The recipe's name, marked when a fast row was measured before the recipe centred crops on classes, or (on a
    task of several classes, where it differs) before it took one Dice per class; then what it standardised and
    jittered (rows from before these settings existed had none and mild), and whether its loss was class-weighted."""
    if row["recipe"] != "fast":
        return row["recipe"]
    if row["settings"].get("class_crops", 0.0) == 0:
        return "fast, random crops only"
    if row["settings"].get("loss", "bce-dice") == "bce-dice" and len(row["per_class_iou"]) > 2:
        return "fast, pooled Dice"
    intensity = row["settings"].get("intensity", "none")
    photometric = row["settings"].get("photometric", "mild")
    weighted = ", class-weighted loss" if row["settings"].get("class_weights") == "auto" else ""
    coarser = ", coarser scale" if row.get("scale", 1.0) < 1 else ""
    seed = f", seed {row['settings']['seed']}" if row["settings"].get("seed", 0) else ""
    return ("fast" + ("" if intensity == "none" else f", {intensity}") + f", {photometric} jitter" + weighted + coarser
            + seed)  # fmt: skip


def recipe_settings(name: str) -> dict:
    """``fast+equalize+wide`` -> the fast recipe with MODIFIERS' settings."""
    recipe, *modifiers = name.split("+")
    unknown = [m for m in modifiers if m not in MODIFIERS]
    if recipe not in RECIPES or unknown:
        raise SystemExit(
            f"unknown recipe {name!r}: a recipe ({', '.join(RECIPES)}) and modifiers from {list(MODIFIERS)}"
        )
    return {"recipe": recipe} | {k: v for m in modifiers for k, v in MODIFIERS[m].items()}


def ablation_table(rows: list[dict], minutes: float, machine: str) -> str:
    lines = [
        f"# Ablation of the fast recipe: CS-UNet on Super-1, {minutes:g} CPU minutes each, from scratch",
        "",
        f"CPU: {machine}. Command: `python -m benchmarks.train_cpu --minutes {minutes:g} --ablation [--variants "
        "A;B]`. CS-UNet resnet18 + intermediate Swin-T, batch 4,",
        "faithful initialisation. Rows other than `paper` use the fast recipe's schedule (warm-up 5 %, cosine to",
        "zero at the end of the 5 minutes, gradient clipping 1, validation paced to ~20 % of the time); the four",
        "rows after `paper` change the optimiser, rate, decay and crop size (random crops, the paper's pooled",
        "Dice); rows starting `...` change one thing of the row `fast before this ablation`. Choose by validation",
        "IoU (`best val IoU`), not by test IoU. Steps differ between runs of equal settings by up to ~15 % (machine",
        "load, when the budget falls), and so do the IoUs. Rows are kept across runs; machines of one type differ",
        "by up to ~1.3x between sessions (compare steps), so compare rows measured in one session (`measured`,",
        "UTC; `earlier`: before rows were stamped).",
        "",
        "| variant | test NASA IoU | mIoU w/o bg | tertiary IoU | steps | best val IoU | measured |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in rows:
        lines.append(
            f"| {name} | {row['nasa_iou']:.4f} | {row['miou_without_background']:.4f} | "
            f"{row['per_class_iou'].get('tertiary', float('nan')):.3f} | {row['steps']} | {row['best_val_iou']:.4f} | "
            f"{row.get('measured', 'earlier')} |"
        )
    return "\n".join(lines) + "\n"


def figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    tasks = [t for t in TASKS if any(r["task"] == t for r in rows)]
    columns = min(4, len(tasks))
    figure_, axes = plt.subplots((len(tasks) + columns - 1) // columns, columns, figsize=(4 * columns, 3.2 *
                                 ((len(tasks) + columns - 1) // columns)), squeeze=False, dpi=100)  # fmt: skip
    # one colour per model and recipe in every panel
    series = sorted({(r["model"], recipe_label(r)) for r in rows})
    colours = {key: f"C{index}" for index, key in enumerate(series)}
    for ax, task in zip(axes.flat, tasks):
        for row in (r for r in rows if r["task"] == task):
            points, label = row["curve"], recipe_label(row)
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=f"{row['model']} {label}",
                    color=colours[row["model"], label])  # fmt: skip
        ax.set_title(task)
        ax.set_xlabel("minutes")
        ax.set_ylabel("validation NASA IoU")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(tasks) :]:
        ax.axis("off")
    figure_.tight_layout()
    save_figure(figure_, path)


def save_figure(figure_, path: Path) -> None:
    """A matplotlib figure as a PNG, written atomically, then closed."""
    import io

    from matplotlib import pyplot as plt

    buffer = io.BytesIO()
    figure_.savefig(buffer, format="png")
    plt.close(figure_)
    atomic_write_bytes(path, buffer.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget per run")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--recipes", default="paper,fast")
    parser.add_argument("--models", default="cs_unet,unet_plusplus")
    parser.add_argument("--ablation", action="store_true", help="the fast recipe's ablation on Super-1")
    parser.add_argument("--variants", default=";".join(ABLATION), help="ablation variants to run, separated by ;")
    parser.add_argument("--gpu", action="store_true", help="bf16 + compile on a CUDA GPU; results in train_gpu.*")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-train-cpu"))
    args = parser.parse_args(argv)
    extra, stem = (GPU_SETTINGS, "train_gpu") if args.gpu else ({}, "train_cpu")
    data_root, machine = resolve_data_root(), cpu_name()
    RESULTS.mkdir(exist_ok=True)
    out = args.out / time.strftime("%Y%m%d-%H%M%S")
    if args.ablation:
        path = RESULTS / "recipe_ablation.json"
        done = dict(json.loads(path.read_text())["rows"]) if path.is_file() else {}
        main_rows = RESULTS / "train_cpu.json"
        if main_rows.is_file():  # the plain recipes on Super-1 are rows of the main table already
            for row in json.loads(main_rows.read_text())["rows"]:
                if row["task"] == "super-1" and row["model"] == "cs_unet" and row["recipe"] == "paper":
                    done.setdefault("paper", row)
        for name in args.variants.split(";"):
            done[name] = run_one("super-1", "cs_unet", args.minutes, data_root, out / name.replace(" ", "_"),
                                 **ABLATION[name])  # fmt: skip
            ordered = [(n, done[n]) for n in ABLATION if n in done]
            atomic_write_text(path, json.dumps({"machine": machine, "rows": ordered}, indent=1))
            atomic_write_text(RESULTS / "recipe_ablation.md", ablation_table(ordered, args.minutes, machine))
        print((RESULTS / "recipe_ablation.md").read_text())
        return
    path = RESULTS / f"{stem}.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    # rows from before rows named their CPU ran on the machine the file names
    rows = [{"cpu": old["machine"]} | r for r in old.get("rows", []) if "recipe" in r]
    done = {(r["task"], r["model"], recipe_label(r), r["cpu"]): r for r in rows}
    for task in args.tasks.split(","):
        for model in args.models.split(","):
            for recipe in args.recipes.split(","):
                if model != "cs_unet" and recipe == "paper":
                    continue  # UNet++ runs with the fast recipe only, as the comparison asks
                row = run_one(task, model, args.minutes, data_root, out, **recipe_settings(recipe), **extra)
                done[(task, model, recipe_label(row), machine)] = row
                ordered = sorted(
                    done.values(), key=lambda r: (TASKS.index(r["task"]), r["model"], recipe_label(r))
                )
                atomic_write_text(path, json.dumps({"machine": machine, "rows": ordered}, indent=1))
                atomic_write_text(RESULTS / f"{stem}.md", result_table(ordered, args.minutes, machine, args.gpu))
                figure([r for r in ordered if r["cpu"] == machine], RESULTS / f"{stem}.png")
    print((RESULTS / f"{stem}.md").read_text())


if __name__ == "__main__":
    main()

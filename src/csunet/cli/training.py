"""Verbs that train and apply models: train, evaluate, predict, export, pretrain, demo."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from csunet.cleanup import RULES as CLEANUP_RULES
from csunet.cli.apps import app
from csunet.cli.common import (
    DataRoot,
    ExportOption,
    JsonFlag,
    ResumeOption,
    console,
    fail,
    print_json,
    say,
    with_config_options,
    with_model_options,
)
from csunet.cli.data import print_dataset_info
from csunet.cli.results import show_measurements
from csunet.demo import DEMO_MINUTES, DEMO_STEPS
from csunet.export.int8 import CALIBRATION_TILES, MAX_DROP, export_int8
from csunet.inference import DEFAULT_TTA, TTA_HELP
from csunet.pretrain.config import PretrainConfig
from csunet.train.config import TrainConfig
from csunet.train.recipes import CLASS_WEIGHTS, RECIPES

RECIPE_VALUES = {
    name: "(" + ", ".join(f"{recipe} {values[name]:g}" if isinstance(values[name], float) else f"{recipe} {values[name]}"
                          for recipe, values in RECIPES.items() if name in values) + ")"
    for name in dict.fromkeys(key for values in RECIPES.values() for key in values)
}  # fmt: skip
"""Each recipe's value of a setting, shown in its --help from the one table of recipes (train/recipes.py)."""

TaskOption = Annotated[str | None, typer.Option("--task", help="Built-in task (super-1 .. ebc-3) or 'sample'.")]
DataOption = Annotated[
    Path | None, typer.Option("--data", help="Dataset description YAML (see `csunet data init`).")
]


def _data_spec(task: str | None, data: Path | None, required: bool = True) -> str | None:
    if task and data:
        fail("give --task or --data, not both")
    if required and not (task or data):
        fail("say what to train on: --task super-1 (or sample) or --data DESCRIPTION.yaml")
    return task or (str(data) if data else None)


def print_metrics(result: dict, title: str) -> None:
    """The metrics table of an evaluation (NASA IoU, mIoU, per-class IoU) and its per-image values."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("NASA IoU (pooled, mean over images)", f"{result['nasa_iou']:.4f}")
    table.add_row("mean IoU without background", f"{result['miou_without_background']:.4f}")
    for name, value in result["per_class_iou"].items():
        table.add_row(f"IoU {name}", f"{value:.4f}")
    console.print(table)
    for row in result.get("per_image", []):
        say(f"  {row['image']}: NASA IoU {row['nasa_iou']:.4f}")
    if "measurement_agreement" in result:
        print_agreement(result)


def print_agreement(result: dict) -> None:
    """How far the measurements of the predicted masks are from the truth's, measured alike."""
    from csunet.morphometry import agreement_rows

    found = result["measurement_agreement"]
    table = Table(title=f"measurements of the masks against the truth ({found['images']} images, particles from "
                  f"{found['min_size_px']} px; clean-up: {result['cleanup']})")  # fmt: skip
    for column in ("class", "measure", "truth", "predicted", "error"):
        table.add_column(column, justify="left" if column in ("class", "measure") else "right")
    for row in agreement_rows(found):
        table.add_row(*row)
    console.print(table)


def _class_weights(text: str | None):
    if text is None or text in CLASS_WEIGHTS:
        return text
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        fail(f"--class-weights takes {', '.join(CLASS_WEIGHTS)} or numbers separated by commas, not {text!r}")


@app.command()
@with_config_options(
    TrainConfig, skip=("data", "data_root", "model_settings", "class_weights"), notes=RECIPE_VALUES
)
@with_model_options(skip=("img_size", "drop_path_rate"))  # the tile size is the input size
def train(
    config_values: dict,
    model_settings: dict,
    task: TaskOption = None,
    data: DataOption = None,
    data_root: DataRoot = None,
    class_weights: Annotated[
        str | None,
        typer.Option(
            help="none; auto (inverse class frequency, tempered as the crops); rare (auto when a class holds under "
            f"1 % of the training pixels); or one number per class (w0,w1,..) {RECIPE_VALUES['class_weights']}."
        ),
    ] = None,
    resume: ResumeOption = None,
) -> None:
    """Train a segmentation model (the fast recipe unless --recipe paper); writes a run folder and tests the best
    checkpoint."""
    from csunet.train import resume as resume_run
    from csunet.train import train as train_run

    if resume is not None:
        from csunet.train.run import resume_conflicts

        defaults = {
            f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING
        }
        chosen = {name: value for name, value in config_values.items() if value != defaults.get(name)}
        chosen |= {"data": _data_spec(task, data, required=False)} if (task or data) else {}
        chosen |= {"data_root": str(data_root)} if data_root else {}
        settings = model_settings
        conflicts = resume_conflicts(resume, chosen | ({"model_settings": settings} if settings else {}))
        if class_weights is not None:
            conflicts.append(f"class_weights {class_weights!r}")
        if conflicts:
            fail(
                f"--resume {resume} continues the run as it was configured; these options would change it: "
                f"{'; '.join(conflicts)}. Start another run with a new --name to train differently"
            )
        summary = resume_run(resume)
    else:
        settings = model_settings
        if config_values.get("init_weights"):  # the checkpoint's model, settings and tile size, unless given
            from csunet.checkpoint import META_KEY, CheckpointMeta, read_checkpoint
            from csunet.train.finetune import checkpoint_model

            path = config_values["init_weights"]
            taken = checkpoint_model(CheckpointMeta.from_dict(read_checkpoint(path)[META_KEY], path))
            if config_values["model"] == TrainConfig.model:
                config_values["model"] = taken["model"]
            if config_values["model"] == taken["model"]:
                settings = taken["model_settings"] | settings
            for name in ("tile_size", "scale"):
                if config_values.get(name) is None:
                    config_values[name] = taken[name]
            say(f"from --init-weights {path}: model {config_values['model']} {settings}, tile "
                f"{config_values['tile_size']}, scale {config_values['scale']:g}")  # fmt: skip
        config = TrainConfig(
            data=_data_spec(task, data),
            data_root=str(data_root) if data_root else None,
            model_settings=settings,
            class_weights=_class_weights(class_weights),
            **config_values,
        )
        summary = train_run(config)
    if summary:
        _show_summary(summary)


def _show_summary(summary: dict) -> None:
    say(
        f"run {summary['run_dir']}: {summary['epochs']} epochs, best validation NASA IoU "
        f"{summary['best_val_iou']:.4f}; best checkpoint {summary['best_checkpoint'] or 'none (no epoch finished)'}"
    )
    if "test" in summary:
        print_metrics(summary["test"], "test split, best checkpoint")


@app.command()
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by `csunet train`.")],
    task: TaskOption = None,
    data: DataOption = None,
    data_root: DataRoot = None,
    split: Annotated[str, typer.Option(help="Split to evaluate.")] = "test",
    overlap: Annotated[float, typer.Option(help="Tile overlap for images larger than a tile.")] = 0.5,
    tta: Annotated[str, typer.Option(help=TTA_HELP)] = DEFAULT_TTA,
    figures: Annotated[Path | None, typer.Option(help="Write an error panel per image here.")] = None,
    engine: EngineOption = "torch",
    cleanup: CleanupOption = [],  # noqa: B006  (typer needs a literal default)
    as_json: JsonFlag = False,
) -> None:
    """Metrics of a checkpoint on a split (default: the test split of the data it was trained on), and how far the
    measurements of its masks are from the truth's."""
    from csunet.evaluate import evaluate as evaluate_checkpoint

    engine = _prepared_engine(checkpoint, engine, quiet=as_json)
    result = evaluate_checkpoint(
        checkpoint, _data_spec(task, data, required=False), split, data_root, overlap, tta, figures=figures,
        progress=not as_json, engine=engine, cleanup=cleanup,
    )  # fmt: skip
    if as_json:
        print_json(result)
        return
    print_metrics(result, f"{result['data']} / {split}: {checkpoint}")
    if figures:
        say(f"error panels in {figures}")


CleanupOption = Annotated[
    list[str],
    typer.Option(
        "--cleanup",
        help="Change the clean-up the checkpoint records (decided on validation at the end of training): off, or "
        f"RULE.CLASS=PIXELS / offset.CLASS=NUMBER / RULE.CLASS=off, RULE one of {', '.join(CLEANUP_RULES)}; "
        "repeatable.",
    ),
]
EngineOption = Annotated[
    str,
    typer.Option(
        help="auto (the fastest valid here: GPU torch bf16; CPU openvino-int8 when exported, openvino, onnx, "
        "torch), torch, onnx (ONNX Runtime), openvino (fp32), openvino-int8 (after `csunet export --int8`). "
        "Exports are made beside the checkpoint once."
    ),
]


def _prepared_engine(checkpoint: Path, engine: str, quiet: bool = False) -> str:
    """The engine ``engine`` resolves to for ``checkpoint``, its files made now (so the export time is said)."""
    from csunet.export import ENGINES, choose_engine, ensure_onnx, ensure_openvino
    from csunet.inference import default_device

    if engine not in ENGINES:
        fail(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    chosen = choose_engine(checkpoint, default_device()) if engine == "auto" else engine
    made = {"onnx": ensure_onnx, "openvino": ensure_openvino}.get(chosen)
    seconds = made(checkpoint)[1] if made else None
    if not quiet:
        say(f"engine: {chosen}{' (auto)' if engine == 'auto' else ''}")
        if seconds is not None:
            say(f"exported {checkpoint} for {chosen} in {seconds:.0f} s (kept beside it for next time)")
    return chosen


@app.command()
def predict(
    checkpoint: Annotated[
        Path,
        typer.Argument(
            help="A checkpoint written by `csunet train`, one of its exports (.onnx, .openvino.xml, .int8.xml), a "
            "model bundle (.zip) or the name of an installed one (`csunet models`)."
        ),
    ],
    inputs: Annotated[list[Path], typer.Argument(help="Image files and/or folders of images.")],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("predictions"),
    overlap: Annotated[float, typer.Option(help="Tile overlap, a share of the tile in [0, 0.9].")] = 0.5,
    tta: Annotated[str, typer.Option(help=TTA_HELP)] = DEFAULT_TTA,
    batch_size: Annotated[int, typer.Option(help="Tiles per forward pass.")] = 4,
    mask_format: Annotated[str, typer.Option(help="png or tif.")] = "png",
    probabilities: Annotated[bool, typer.Option(help="Also write per-class probability maps (TIFF).")] = False,
    uncertainty: Annotated[
        bool, typer.Option(help="Also write an entropy map: where labelling would help.")
    ] = False,
    engine: EngineOption = "auto",
    overwrite: Annotated[
        bool,
        typer.Option(
            help="Replace the outputs in --out (otherwise the same command continues an interrupted run, and a "
            "folder with other images' or other settings' outputs is refused)."
        ),
    ] = False,
    cleanup: CleanupOption = [],  # noqa: B006  (typer needs a literal default)
    export: ExportOption = [],  # noqa: B006
    shard: Annotated[
        str | None,
        typer.Option(
            help="K/N: segment every N-th image from the K-th (job arrays; under torchrun the rank decides); the "
            "last shard to finish merges predictions.json."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Segment images of any size: index masks, colour overlays, optional probabilities and uncertainty. Rerun the
    same command to continue an interrupted run."""
    from csunet.export.bundle import resolve as resolve_bundle
    from csunet.predict import checked_request
    from csunet.predict import predict as predict_images

    checked_request(inputs, out, overlap, batch_size, mask_format, shard, export)  # now, not after an export
    checkpoint = resolve_bundle(checkpoint) or checkpoint  # a bundle or an installed model's name
    engine = _prepared_engine(checkpoint, engine, quiet=as_json)
    records = predict_images(
        checkpoint, inputs, out, overlap, tta, batch_size, mask_format, probabilities, uncertainty,
        progress=not as_json, engine=engine, overwrite=overwrite, shard=shard, cleanup=cleanup, exports=export,
    )  # fmt: skip
    if as_json:
        print_json(records)
    else:
        for record in records:
            if "error" in record:
                say(record["error"], "error")
            else:
                say(f"{record['image']} -> {record['mask']}, {record['overlay']}")
    if any("error" in record for record in records):
        raise typer.Exit(code=1)


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by `csunet train`.")],
    out: Annotated[Path | None, typer.Option(help="ONNX file to write (default: beside the checkpoint).")] = None,
    int8: Annotated[
        bool,
        typer.Option(
            help="Also write an OpenVINO int8 model beside the checkpoint, calibrated on its training images, "
            "kept only if its validation NASA IoU is within --max-drop of fp32's."
        ),
    ] = False,
    max_drop: Annotated[float, typer.Option(help="NASA IoU int8 may lose against fp32.")] = MAX_DROP,
    calibration_tiles: Annotated[
        int, typer.Option(help="Training tiles that calibrate int8.")
    ] = CALIBRATION_TILES,
    data_root: DataRoot = None,
    bundle: Annotated[
        bool,
        typer.Option(
            help="Write a model bundle instead (a bioimage.io package: ONNX, int8 when accepted, classes, "
            "colours, normalisation, pixel size, recipe, test scores, SHA-256 of each file); --out names the .zip."
        ),
    ] = False,
    name: Annotated[str | None, typer.Option(help="The bundle's name (default: model and run).")] = None,
    license: Annotated[str, typer.Option(help="The bundle's licence (an SPDX identifier).")] = "MIT",
    author: Annotated[list[str], typer.Option(help="An author of the bundle; repeatable.")] = [],  # noqa: B006
) -> None:
    """Export a trained model to ONNX (any batch size, the training tile size) with its metadata inside; with
    --int8 also an int8 OpenVINO model that proved its accuracy; with --bundle one file to hand to a colleague."""
    import time

    from csunet.export import ensure_onnx, export_checkpoint

    if bundle:
        from csunet.export.bundle import write_bundle

        if int8:
            export_int8(checkpoint, max_drop, calibration_tiles, data_root=data_root)
        path = write_bundle(checkpoint, out, name, license, author or None)
        say(f"{path} ({path.stat().st_size / 1e6:.1f} MB); a colleague runs `csunet models install {path.name}`")
        return
    started = time.perf_counter()
    if out is None:  # beside the checkpoint, where the engines look: kept when it is up to date
        path, seconds = ensure_onnx(checkpoint)
    else:
        path, seconds = export_checkpoint(checkpoint, out), time.perf_counter() - started
    made = "up to date" if seconds is None else f"{seconds:.0f} s"
    say(f"{path} ({path.stat().st_size / 1e6:.1f} MB, {made}); predict with `csunet predict {path} IMAGES`")
    if int8:
        result = export_int8(checkpoint, max_drop, calibration_tiles, data_root=data_root)
        say(
            f"{result['path']}: int8 NASA IoU {result['int8_nasa_iou']:.4f}, fp32 {result['fp32_nasa_iou']:.4f} on "
            f"{result['validation']['images']} {result['validation']['split']} images ({result['method']}; "
            f"calibrated on {result['calibration']['tiles']} training tiles); `--engine auto` now uses it"
        )


@app.command()
@with_config_options(
    PretrainConfig, skip=("data",), flags={"res_mlp": "--res-mlp/--plain-mlp", "window_size": "--window"}
)
def pretrain(
    config_values: dict,
    data: Annotated[Path | None, typer.Argument(help="Collection with one subfolder per class.")] = None,
    resume: ResumeOption = None,
) -> None:
    """Pretrain Swin-T as a micrograph classifier and export its encoder for `csunet train --swin-weights`."""
    from csunet.pretrain.train import pretrain as run_pretraining
    from csunet.pretrain.train import resume_pretraining

    if resume is not None:
        summary = resume_pretraining(resume)
    else:
        if data is None:
            fail("give the collection folder (or --resume RUN)")
        summary = run_pretraining(PretrainConfig(data=str(data), **config_values))
    if summary:
        test = summary["test"]
        say(
            f"encoder: {summary['encoder']} (test top-1 {test.get('test_top1', float('nan')):.4f}, "
            f"top-5 {test.get('test_top5', float('nan')):.4f}); use it with --swin-weights"
        )


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder of run folders.")] = Path("runs"),
    minutes: Annotated[float, typer.Option(help="Cap on the training time.")] = DEMO_MINUTES,
    steps: Annotated[int, typer.Option(help="Optimiser steps to train for.")] = DEMO_STEPS,
) -> None:
    """The main job on the bundled sample (NASA Super-1): train CS-UNet, test it, segment and measure the test
    images, write an HTML report."""
    from csunet.demo import run_demo

    run_demo(
        print_dataset_info,
        print_metrics,
        show_measurements,
        say,
        out,
        minutes,
        steps,
    )

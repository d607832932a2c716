"""The `csunet` command. Each verb is a thin layer over one library function."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from csunet.data.errors import DataError

app = typer.Typer(
    help="CS-UNet for micrographs: data, models, training, segmentation, measurement.", no_args_is_help=True
)
data_app = typer.Typer(help="Inspect datasets and write dataset descriptions.", no_args_is_help=True)
app.add_typer(data_app, name="data")
weights_app = typer.Typer(help="List, fetch, import, inspect and check pretrained weights.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")
benchmark_app = typer.Typer(help="Run experiment grids into a results database (and merge databases).")
app.add_typer(benchmark_app, name="benchmark")
prep_app = typer.Typer(
    help="Prepare a pretraining collection: clean, tile, augment, cluster.", no_args_is_help=True
)
app.add_typer(prep_app, name="prep")
console = Console()

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]
DataRoot = Annotated[
    Path | None,
    typer.Option("--data-root", help="NASA benchmark folder (Super1..4, EBC1..3); default $CSUNET_DATA."),
]


def _fail(exc: Exception) -> None:
    console.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(code=2)


def _print_json(data) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@app.command()
def doctor(as_json: JsonFlag = False) -> None:
    """Print versions, threads, CUDA devices and folders: what a bug report needs."""
    from csunet.doctor import environment_report

    report = environment_report()
    if as_json:
        _print_json(report)
        return
    table = Table(title="csunet doctor", show_header=False)
    table.add_row("python", report["python"])
    table.add_row("platform", report["platform"])
    for name, version in report["packages"].items():
        table.add_row(name, version or "[dim]not installed[/]")
    table.add_row("CPU threads", f"{report['cpu_count']} logical, torch uses {report['torch_threads']}")
    cuda = report["cuda"]
    devices = ", ".join(f"{d['index']}: {d['name']} ({d['memory_gib']} GiB)" for d in cuda["devices"])
    table.add_row("CUDA", devices if cuda["available"] else f"none ({cuda['why_none']})")
    table.add_row("weights cache", report["weights_cache"])
    console.print(table)


def print_dataset_info(report: dict) -> None:
    """Rich tables for :func:`csunet.data.dataset_info` output."""
    classes = report["classes"]
    table = Table(title=f"dataset {report['name']}")
    for column in ("split", "pairs", "unpaired img/mask", "sizes (WxH)", "dtypes", *classes):
        table.add_column(column, justify="right" if column not in ("split", "sizes (WxH)", "dtypes") else "left")
    for split, info in report["splits"].items():
        table.add_row(
            split,
            str(info["pairs"]),
            f"{len(info['images_without_mask'])}/{len(info['masks_without_image'])}",
            ", ".join(f"{k} x{v}" for k, v in info["sizes"].items()),
            ", ".join(f"{k} x{v}" for k, v in info["dtypes"].items()),
            *(f"{100 * info['class_fractions'][c]:.2f}%" for c in classes),
        )
    console.print(table)
    for message in report["warnings"]:
        console.print(f"[yellow]warning:[/] {message}", highlight=False)
    for message in report["errors"]:
        console.print(f"[bold red]error:[/] {message}", highlight=False)


@data_app.command("info")
def data_info(
    dataset: Annotated[str, typer.Argument(help="Task name (super-1 .. ebc-3, sample) or a description YAML.")],
    data_root: DataRoot = None,
    as_json: JsonFlag = False,
) -> None:
    """Per split: image count, sizes, dtypes, class pixel fractions, and every problem found."""
    from csunet.data import dataset_info, load_description

    try:
        report = dataset_info(load_description(dataset, data_root))
    except DataError as exc:
        _fail(exc)
    if as_json:
        _print_json(report)
    else:
        print_dataset_info(report)
    if report["errors"]:
        raise typer.Exit(code=1)


@data_app.command("init")
def data_init(
    folder: Annotated[Path, typer.Argument(help="Folder holding image and mask folders.")],
    out: Annotated[Path | None, typer.Option(help="Where to write (default FOLDER/dataset.yaml).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing description.")] = False,
) -> None:
    """Write a first dataset description by inspecting the masks in FOLDER."""
    from csunet.data import write_description

    try:
        path = write_description(folder, out, overwrite)
    except DataError as exc:
        _fail(exc)
    console.print(f"wrote {path}; review class names and order, then `csunet data info {path}`", highlight=False)
    typer.echo(path.read_text())


@data_app.command("tasks")
def data_tasks(as_json: JsonFlag = False) -> None:
    """List the built-in NASA benchmark tasks."""
    from csunet.data import list_tasks

    names = list_tasks()
    if as_json:
        _print_json(names)
    else:
        typer.echo("\n".join(names))


Encoder = Annotated[str, typer.Option(help="CNN encoder (any segmentation_models_pytorch name).")]
Depths = Annotated[str, typer.Option(help="Swin depths: original [2,2,6,2] or intermediate [2,2,2,2].")]
ImgSize = Annotated[int, typer.Option(help="Input (tile) size.")]
Window = Annotated[int, typer.Option(help="Swin window size (8 for 512, 7 for 224).")]
Classes = Annotated[int, typer.Option(help="Number of output classes.")]


@app.command()
def models(
    encoder: Encoder = "resnet50",
    depths: Depths = "intermediate",
    img_size: ImgSize = 512,
    window: Window = 8,
    classes: Classes = 3,
    as_json: JsonFlag = False,
) -> None:
    """List architectures with presets and parameter counts for the given settings."""
    from csunet.models.summary import describe_models

    try:
        rows = describe_models(
            encoder=encoder, depths=depths, img_size=img_size, window_size=window, num_classes=classes
        )
    except ValueError as exc:
        _fail(exc)
    if as_json:
        _print_json(rows)
        return
    table = Table(title=f"models at {img_size}/window {window}, {classes} classes, encoder {encoder}, {depths}")
    for column in ("model", "parameters", "CNN", "Swin encoder", "decoder", "presets"):
        table.add_column(column)
    for row in rows:
        parts = row["parameters_by_part"]
        table.add_row(
            row["name"],
            f"{row['parameters'] / 1e6:.2f}M",
            *(f"{parts[p] / 1e6:.2f}M" if p in parts else "-" for p in ("cnn", "swin", "decoder")),
            ", ".join(row["presets"]),
        )
    console.print(table)


@weights_app.command("list")
def weights_list(as_json: JsonFlag = False) -> None:
    """Catalogued weight files (NASA MicroNet CNNs, ImageNet Swin-T) and whether they are cached."""
    from csunet.weights import list_weights

    rows = list_weights()
    if as_json:
        _print_json(rows)
        return
    table = Table(title="weights")
    for column in ("name", "kind", "cached", "url"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["kind"], "yes" if row["cached"] else "", row["url"])
    console.print(table)


@weights_app.command("fetch")
def weights_fetch(
    name: Annotated[str, typer.Argument(help="Catalogue name, e.g. resnet50.micronet or swin_t.imagenet.")],
    url: Annotated[str | None, typer.Option(help="Download from this mirror instead.")] = None,
) -> None:
    """Download a catalogued weight file into the cache (checksum recorded and verified)."""
    from csunet.weights import WeightsError, fetch

    try:
        path = fetch(name, url=url)
    except (WeightsError, ValueError) as exc:
        _fail(exc)
    console.print(f"{name}: {path}", highlight=False)


@weights_app.command("import")
def weights_import(
    file: Annotated[Path, typer.Argument(help="A weight file obtained elsewhere.")],
    name: Annotated[str, typer.Argument(help="Catalogue name it stands for, e.g. resnet50.micronet.")],
) -> None:
    """Put a weight file into the cache under a catalogue name (checked to load safely first)."""
    from csunet.weights import WeightsError, import_file

    try:
        path = import_file(file, name)
    except (WeightsError, ValueError) as exc:
        _fail(exc)
    console.print(f"{name}: imported to {path}", highlight=False)


@weights_app.command("inspect")
def weights_inspect(
    file: Annotated[Path, typer.Argument(help="Checkpoint file.")], as_json: JsonFlag = False
) -> None:
    """Format, tensor and parameter counts, dtypes, groups and SHA-256 of a checkpoint."""
    from csunet.weights import WeightsError, inspect_file

    try:
        info = inspect_file(file)
    except WeightsError as exc:
        _fail(exc)
    if as_json:
        _print_json(info)
        return
    for key in ("path", "format", "tensors", "parameters", "dtypes", "sha256"):
        console.print(f"{key}: {info[key]}", highlight=False)
    for group, count in info["groups"].items():
        console.print(f"  {group}: {count:,} parameters", highlight=False)


@weights_app.command("check")
def weights_check(
    model: Annotated[str, typer.Argument(help="Architecture, e.g. cs_unet.")] = "cs_unet",
    swin: Annotated[str | None, typer.Option(help="Swin checkpoint file or catalogue name.")] = None,
    cnn: Annotated[str | None, typer.Option(help="imagenet, micronet, image-micronet, or a file.")] = None,
    encoder: Encoder = "resnet50",
    depths: Depths = "intermediate",
    img_size: ImgSize = 512,
    window: Window = 8,
    classes: Classes = 3,
    as_json: JsonFlag = False,
) -> None:
    """Build a model, load weights into it and print exactly what loaded, was resized, or stayed fresh."""
    from csunet.models.summary import create_from_settings
    from csunet.weights import WeightsError, load_pretrained

    try:
        net = create_from_settings(
            model, encoder=encoder, depths=depths, img_size=img_size, window_size=window, num_classes=classes
        )
        reports = load_pretrained(net, swin=swin, cnn=cnn, encoder_name=encoder)
    except (WeightsError, ValueError, KeyError) as exc:
        _fail(exc)
    if as_json:
        _print_json([r.to_dict() for r in reports])
    else:
        for report in reports:
            console.print(str(report), highlight=False)


TaskOption = Annotated[str | None, typer.Option("--task", help="Built-in task (super-1 .. ebc-3) or 'sample'.")]
DataOption = Annotated[
    Path | None, typer.Option("--data", help="Dataset description YAML (see `csunet data init`).")
]


AcceleratorOption = Annotated[str, typer.Option("--accelerator", help="Lightning accelerator: auto, cpu, gpu.")]
DevicesOption = Annotated[str, typer.Option("--devices", help="Lightning devices: auto, a count, or a list.")]
StrategyOption = Annotated[str, typer.Option("--strategy", help="Lightning strategy: auto, ddp, ...")]
PrecisionOption = Annotated[
    str, typer.Option("--precision", help="Lightning precision: 32-true, bf16-mixed, 16-mixed.")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Random seed.")]
RunsOption = Annotated[Path, typer.Option("--out", help="Folder of run folders.")]
NameOption = Annotated[
    str | None, typer.Option("--name", help="Run folder name (default: made from data and time).")
]
ResumeOption = Annotated[
    Path | None, typer.Option("--resume", help="Continue the interrupted run in this folder.")
]


def _data_spec(task: str | None, data: Path | None, required: bool = True) -> str | None:
    if task and data:
        _fail(ValueError("give --task or --data, not both"))
    if required and not (task or data):
        _fail(ValueError("say what to train on: --task super-1 (or sample) or --data DESCRIPTION.yaml"))
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
        console.print(f"  {row['image']}: NASA IoU {row['nasa_iou']:.4f}", highlight=False)


def _given(**settings) -> dict:
    """Model settings the user gave; the rest are the model's own defaults."""
    return {k: v for k, v in settings.items() if v is not None}


def _class_weights(text: str | None):
    if text is None or text in ("none", "auto"):
        return None if text in (None, "none") else "auto"
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        _fail(ValueError(f"--class-weights takes none, auto or numbers separated by commas, not {text!r}"))


@app.command()
def train(
    task: TaskOption = None,
    data: DataOption = None,
    data_root: DataRoot = None,
    model: Annotated[str, typer.Option(help="Architecture from `csunet models`.")] = "cs_unet",
    encoder: Annotated[str | None, typer.Option(help="CNN encoder (smp name); default: the model's.")] = None,
    depths: Annotated[str | None, typer.Option(help="Swin depths: original or intermediate.")] = None,
    window: Annotated[int | None, typer.Option(help="Swin window size (8 for 512 tiles, 7 for 224).")] = None,
    embed_dim: Annotated[
        int | None, typer.Option(help="Swin width (96 = Swin-T; smaller for quick models).")
    ] = None,
    variant: Annotated[str | None, typer.Option(help="HiFormer variant: s, b or l.")] = None,
    levels: Annotated[int | None, typer.Option(help="TransDeepLab pyramid levels (1-4).")] = None,
    tile_size: Annotated[int, typer.Option(help="Training crop and inference tile size.")] = 512,
    swin_weights: Annotated[str | None, typer.Option(help="Swin checkpoint file or catalogue name.")] = None,
    cnn_weights: Annotated[str | None, typer.Option(help="imagenet, micronet, image-micronet, or a file.")] = None,
    augment: Annotated[str, typer.Option(help="auto, super, ebc or default.")] = "auto",
    loss: Annotated[str, typer.Option(help="bce-dice (the paper's), ce, focal or tversky.")] = "bce-dice",
    class_weights: Annotated[
        str | None, typer.Option(help="none, auto, or one number per class (w0,w1,..).")
    ] = None,
    lr: Annotated[float, typer.Option(help="Stage-1 learning rate (Adam).")] = 2e-4,
    fine_tune_lr: Annotated[
        float, typer.Option(help="Stage-2 learning rate after reloading the best weights.")
    ] = 1e-5,
    patience: Annotated[int, typer.Option(help="Epochs without validation improvement per stage.")] = 30,
    max_epochs: Annotated[int, typer.Option(help="Cap on epochs.")] = 1000,
    max_minutes: Annotated[float | None, typer.Option(help="Cap on training wall time.")] = None,
    batch_size: Annotated[int, typer.Option(help="Crops per step (and tiles per inference batch).")] = 4,
    crops_per_epoch: Annotated[
        int | None, typer.Option(help="Random crops per epoch (default: one per image).")
    ] = None,
    val_overlap: Annotated[float, typer.Option(help="Tile overlap when validating whole images.")] = 0.25,
    workers: Annotated[
        int | None, typer.Option(help="DataLoader workers (default: 0 on CPU, up to 8 on GPU).")
    ] = None,
    seed: SeedOption = 0,
    deterministic: Annotated[bool, typer.Option(help="Deterministic algorithms (slower).")] = False,
    accelerator: AcceleratorOption = "auto",
    devices: DevicesOption = "auto",
    num_nodes: Annotated[int, typer.Option(help="Machines taking part.")] = 1,
    strategy: StrategyOption = "auto",
    precision: PrecisionOption = "32-true",
    compile_model: Annotated[
        bool, typer.Option("--compile", help="torch.compile training steps (helps on GPUs, not on small CPUs).")
    ] = False,
    out: RunsOption = Path("runs"),
    name: NameOption = None,
    resume: ResumeOption = None,
) -> None:
    """Train a segmentation model with the paper's recipe; writes a run folder and tests the best checkpoint."""
    from csunet.train import TrainConfig, TrainingDiverged
    from csunet.train import resume as resume_run
    from csunet.train import train as train_run

    try:
        if resume is not None:
            summary = resume_run(resume)
        else:
            config = TrainConfig(
                data=_data_spec(task, data), data_root=str(data_root) if data_root else None, model=model,
                model_settings=_given(encoder=encoder, depths=depths, window_size=window, embed_dim=embed_dim,
                                      variant=variant, levels=levels),
                tile_size=tile_size,
                swin_weights=swin_weights, cnn_weights=cnn_weights, augment=augment, loss=loss,
                class_weights=_class_weights(class_weights), lr=lr, fine_tune_lr=fine_tune_lr, patience=patience,
                max_epochs=max_epochs, max_minutes=max_minutes, batch_size=batch_size, crops_per_epoch=crops_per_epoch,
                val_overlap=val_overlap, workers=workers, seed=seed, deterministic=deterministic,
                accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy,
                precision=precision, compile=compile_model, out=str(out), name=name,
            )  # fmt: skip
            summary = train_run(config)
    except (DataError, ValueError, KeyError, FileExistsError, FileNotFoundError, TrainingDiverged) as exc:
        _fail(exc)
    if summary:
        _show_summary(summary)


def _show_summary(summary: dict) -> None:
    console.print(
        f"run {summary['run_dir']}: {summary['epochs']} epochs, best validation NASA IoU "
        f"{summary['best_val_iou']:.4f}; best checkpoint {summary['best_checkpoint'] or 'none (no epoch finished)'}",
        highlight=False,
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
    tta: Annotated[str, typer.Option(help="Test-time augmentation: none, hflip, flips, d4.")] = "none",
    figures: Annotated[Path | None, typer.Option(help="Write an error panel per image here.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Metrics of a checkpoint on a split (default: the test split of the data it was trained on)."""
    from csunet.checkpoint import CheckpointError
    from csunet.evaluate import evaluate as evaluate_checkpoint

    try:
        result = evaluate_checkpoint(
            checkpoint, _data_spec(task, data, required=False), split, data_root, overlap, tta, figures=figures,
            progress=not as_json,
        )  # fmt: skip
    except (CheckpointError, DataError, ValueError) as exc:
        _fail(exc)
    if as_json:
        _print_json(result)
        return
    print_metrics(result, f"{result['data']} / {split}: {checkpoint}")
    if figures:
        console.print(f"error panels in {figures}", highlight=False)


@app.command()
def predict(
    checkpoint: Annotated[
        Path, typer.Argument(help="A checkpoint written by `csunet train`, or its `csunet export` ONNX file.")
    ],
    inputs: Annotated[list[Path], typer.Argument(help="Image files and/or folders of images.")],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("predictions"),
    overlap: Annotated[float, typer.Option(help="Tile overlap (0 to <1).")] = 0.5,
    tta: Annotated[str, typer.Option(help="Test-time augmentation: none, hflip, flips, d4.")] = "none",
    batch_size: Annotated[int, typer.Option(help="Tiles per forward pass.")] = 4,
    mask_format: Annotated[str, typer.Option(help="png or tif.")] = "png",
    probabilities: Annotated[bool, typer.Option(help="Also write per-class probability maps (TIFF).")] = False,
    uncertainty: Annotated[
        bool, typer.Option(help="Also write an entropy map: where labelling would help.")
    ] = False,
    engine: Annotated[
        str, typer.Option(help="torch, or onnx: ONNX Runtime, ~2x faster on CPU (exports the checkpoint once).")
    ] = "torch",
    as_json: JsonFlag = False,
) -> None:
    """Segment images of any size: index masks, colour overlays, optional probabilities and uncertainty."""
    from csunet.checkpoint import CheckpointError
    from csunet.export import ensure_onnx
    from csunet.predict import predict as predict_images

    try:
        if engine == "onnx":
            onnx_path, seconds = ensure_onnx(checkpoint)
            if seconds is not None and not as_json:
                console.print(f"exported {checkpoint} -> {onnx_path} in {seconds:.0f} s", highlight=False)
        records = predict_images(
            checkpoint, inputs, out, overlap, tta, batch_size, mask_format, probabilities, uncertainty,
            progress=not as_json, engine=engine,
        )  # fmt: skip
    except (CheckpointError, DataError, ValueError, OSError) as exc:
        _fail(exc)
    if as_json:
        _print_json(records)
    else:
        for record in records:
            if "error" in record:
                console.print(f"[bold red]error:[/] {record['error']}", highlight=False)
            else:
                console.print(f"{record['image']} -> {record['mask']}, {record['overlay']}", highlight=False)
    if any("error" in record for record in records):
        raise typer.Exit(code=1)


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by `csunet train`.")],
    out: Annotated[Path | None, typer.Option(help="ONNX file to write (default: beside the checkpoint).")] = None,
) -> None:
    """Export a trained model to ONNX (any batch size, the training tile size) with its metadata inside."""
    import time

    from csunet.checkpoint import CheckpointError
    from csunet.export import export_checkpoint

    started = time.perf_counter()
    try:
        path = export_checkpoint(checkpoint, out)
    except (CheckpointError, ValueError) as exc:
        _fail(exc)
    console.print(
        f"{path} ({path.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - started:.0f} s); "
        f"predict with `csunet predict {path} IMAGES`",
        highlight=False,
    )


def _kinds(pairs: list[str]) -> dict[str, str]:
    kinds = {}
    for pair in pairs:
        name, sep, kind = pair.partition("=")
        if not sep:
            _fail(ValueError(f"--kind takes CLASS=KIND (e.g. oxide=layer), not {pair!r}"))
        kinds[name] = kind
    return kinds


@app.command()
def measure(
    inputs: Annotated[
        list[Path], typer.Argument(help="Index masks, or folders of them (e.g. `csunet predict` output).")
    ],
    out: Annotated[Path, typer.Option(help="Folder for the CSV tables and summary.json.")] = Path("measurements"),
    pixel_size: Annotated[
        float | None, typer.Option("--pixel-size", help="Micrometres per pixel (default: from predictions.json).")
    ] = None,
    min_size: Annotated[int, typer.Option(help="Drop particles and grains of fewer pixels.")] = 5,
    include_border: Annotated[
        bool, typer.Option(help="Keep particles touching the border in size statistics.")
    ] = False,
    kind: Annotated[
        list[str], typer.Option(help="CLASS=KIND (matrix, particle, layer, boundary); repeatable.")
    ] = [],  # noqa: B006  (typer needs a literal default)
    classes: Annotated[
        str | None, typer.Option(help="Comma-separated class names (default: from predictions.json).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Phase fractions, particle sizes, layer thickness and grain size from masks, as CSV tables and a summary."""
    from csunet.measure import measure as measure_masks

    try:
        summary = measure_masks(
            inputs,
            out,
            pixel_size,
            min_size,
            include_border,
            _kinds(kind),
            classes.split(",") if classes else None,
        )
    except (DataError, ValueError) as exc:
        _fail(exc)
    if as_json:
        _print_json(summary)
        return
    show_measurements(summary)


def show_measurements(summary: dict) -> None:
    from csunet.measure import size_summary

    unit = summary["unit"]
    table = Table(title=f"{summary['masks']} masks, lengths in {unit}" + (
        f" ({summary['pixel_size_um']} um per pixel)" if summary["pixel_size_um"] else " (no pixel size given)"
    ))  # fmt: skip
    for column in ("class", "kind", "area fraction", "count", "size / thickness / G"):
        table.add_column(column)
    for name, entry in summary["per_class"].items():
        fraction = f"{entry['area_fraction_mean']:.4f} +- {entry['area_fraction_std']:.4f}"
        table.add_row(name, entry["kind"], fraction, str(entry.get("count", "")), size_summary(entry, unit))
    console.print(table)
    console.print("tables: " + ", ".join(summary["files"].values()), highlight=False)


@app.command()
def report(
    source: Annotated[Path, typer.Argument(help="A run folder (from `csunet train`) or a folder of predictions.")],
    out: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("report.html"),
) -> None:
    """One self-contained HTML page: metrics, curves, panels, measurements and histograms, configuration."""
    from csunet.checkpoint import CheckpointError
    from csunet.report import build_report

    try:
        path = build_report(source, out, say=lambda text: console.print(text, highlight=False))
    except (CheckpointError, DataError, ValueError, FileNotFoundError) as exc:
        _fail(exc)
    console.print(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB); open it in any browser", highlight=False)


SourceFolder = Annotated[Path, typer.Argument(help="Images, flat or in class subfolders.")]
OutFolder = Annotated[Path, typer.Argument(help="Output folder (same class layout, PNG, manifest.csv).")]


def _crop(text: str | None) -> tuple[int, int, int, int] | None:
    if text is None:
        return None
    try:
        top, bottom, left, right = (int(v) for v in text.split(","))
    except ValueError:
        _fail(ValueError(f"--crop takes four pixel counts TOP,BOTTOM,LEFT,RIGHT, not {text!r}"))
    return top, bottom, left, right


@prep_app.command("clean")
def prep_clean(
    source: SourceFolder,
    out: OutFolder,
    crop: Annotated[
        str | None, typer.Option(help="Manual crop TOP,BOTTOM,LEFT,RIGHT instead of detection.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Remove SEM information bands and boxed scale bars (reported per image)."""
    from csunet.pretrain.clean import clean_folder

    try:
        reports = clean_folder(source, out, _crop(crop))
    except (DataError, ValueError) as exc:
        _fail(exc)
    if as_json:
        _print_json(reports)
        return
    for r in reports:
        found = [f"info band rows {r['info_band_rows']}"] if r["info_band_rows"] else []
        found += [f"scale-bar box {b}" for b in r["scale_bar_boxes"]]
        console.print(f"{r['source']}: {', '.join(found) or 'clean'}; removed {r['removed']}", highlight=False)


@prep_app.command("tile")
def prep_tile(
    source: SourceFolder,
    out: OutFolder,
    size: Annotated[int, typer.Option(help="Tile size in pixels.")] = 512,
) -> None:
    """Cut images into tiles: edge to edge when the image divides, evenly overlapping otherwise."""
    from csunet.pretrain.tiles import tile_folder

    try:
        rows = tile_folder(source, out, size)
    except DataError as exc:
        _fail(exc)
    console.print(f"{len(rows)} tiles from {len({r['source'] for r in rows})} images in {out}", highlight=False)


@prep_app.command("augment")
def prep_augment(
    source: SourceFolder,
    out: OutFolder,
    copies: Annotated[int, typer.Option(help="Augmented copies per image (the original is kept too).")] = 2,
    seed: SeedOption = 0,
) -> None:
    """Write originals plus augmented copies (flips, rotations, brightness/contrast, noise)."""
    from csunet.pretrain.tiles import augment_folder

    try:
        rows = augment_folder(source, out, copies, seed)
    except DataError as exc:
        _fail(exc)
    console.print(f"{len(rows)} images in {out}", highlight=False)


@prep_app.command("cluster")
def prep_cluster(
    source: SourceFolder,
    out: Annotated[Path, typer.Argument(help="Output ImageFolder layout (cluster_NN/ folders).")],
    k: Annotated[int | None, typer.Option(help="Number of clusters (default: sweep --k-min..--k-max).")] = None,
    k_min: Annotated[int, typer.Option(help="Smallest k of the sweep.")] = 2,
    k_max: Annotated[int, typer.Option(help="Largest k of the sweep.")] = 10,
    vgg_weights: Annotated[
        str, typer.Option(help="imagenet (torchvision download), none, or a file.")
    ] = "imagenet",
    copy: Annotated[bool, typer.Option(help="Copy images instead of linking them.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Give unlabelled images classes: VGG-16 features + K-means; contact sheets for checking."""
    from csunet.pretrain.cluster import cluster_folder

    try:
        result = cluster_folder(
            source, out, k, list(range(k_min, k_max + 1)), None if vgg_weights == "none" else vgg_weights, copy
        )
    except (DataError, ValueError, OSError, RuntimeError) as exc:
        _fail(exc)
    if as_json:
        _print_json(result)
        return
    scores = ", ".join(f"k={n}: {v:.3f}" for n, v in result["silhouette"].items())
    console.print(
        f"{result['images']} images -> {result['clusters']} clusters (silhouette {scores})", highlight=False
    )
    console.print(f"contact sheets: {out / '_contact_sheets'}", highlight=False)


@app.command()
def pretrain(
    data: Annotated[Path | None, typer.Argument(help="Collection with one subfolder per class.")] = None,
    depths: Annotated[str, typer.Option(help="original or intermediate.")] = "intermediate",
    plain_mlp: Annotated[bool, typer.Option(help="Plain MLP instead of the paper's ResMLP.")] = False,
    img_size: Annotated[int, typer.Option(help="Input size.")] = 224,
    window: Annotated[int, typer.Option(help="Window size.")] = 7,
    init: Annotated[
        str | None, typer.Option(help="Start from a Swin checkpoint (file or swin_t.imagenet).")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Epochs.")] = 30,
    warmup_epochs: Annotated[int, typer.Option(help="Linear warm-up epochs.")] = 5,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW).")] = 5e-4,
    batch_size: Annotated[int, typer.Option(help="Images per optimiser step.")] = 128,
    micro_batch: Annotated[int, typer.Option(help="Images per forward pass (accumulated).")] = 32,
    patience: Annotated[int, typer.Option(help="Early stopping after this many epochs without improvement.")] = 5,
    max_minutes: Annotated[float | None, typer.Option(help="Cap on wall time.")] = None,
    accelerator: AcceleratorOption = "auto",
    devices: DevicesOption = "auto",
    strategy: StrategyOption = "auto",
    precision: PrecisionOption = "32-true",
    seed: SeedOption = 0,
    out: RunsOption = Path("runs"),
    name: NameOption = None,
    resume: ResumeOption = None,
) -> None:
    """Pretrain Swin-T as a micrograph classifier and export its encoder for `csunet train --swin-weights`."""
    from csunet.pretrain.train import PretrainConfig, resume_pretraining
    from csunet.pretrain.train import pretrain as run_pretraining

    try:
        if resume is not None:
            summary = resume_pretraining(resume)
        else:
            if data is None:
                _fail(ValueError("give the collection folder (or --resume RUN)"))
            config = PretrainConfig(
                data=str(data), depths=depths, res_mlp=not plain_mlp, img_size=img_size, window_size=window, init=init,
                epochs=epochs, warmup_epochs=warmup_epochs, lr=lr, batch_size=batch_size, micro_batch=micro_batch,
                patience=patience, max_minutes=max_minutes, accelerator=accelerator, devices=devices,
                strategy=strategy, precision=precision, seed=seed, out=str(out), name=name,
            )  # fmt: skip
            summary = run_pretraining(config)
    except (DataError, ValueError, FileExistsError, FileNotFoundError) as exc:
        _fail(exc)
    if summary:
        test = summary["test"]
        console.print(
            f"encoder: {summary['encoder']} (test top-1 {test.get('test_top1', float('nan')):.4f}, "
            f"top-5 {test.get('test_top5', float('nan')):.4f}); use it with --swin-weights",
            highlight=False,
        )


DbOption = Annotated[Path, typer.Option("--db", help="Results database (SQLite).")]


@benchmark_app.callback(invoke_without_command=True)
def benchmark(
    ctx: typer.Context,
    grid: Annotated[Path | None, typer.Option(help="Grid file (see grids/).")] = None,
    db: DbOption = Path("results.sqlite"),
    shard: Annotated[str | None, typer.Option(help="Run part K of N (K/N) of the grid.")] = None,
    out: Annotated[Path, typer.Option(help="Where run folders go.")] = Path("runs/grids"),
    data_root: DataRoot = None,
) -> None:
    """Run every run of GRID not yet finished in DB; failures are recorded and the grid goes on."""
    if ctx.invoked_subcommand is not None:
        return
    if grid is None:
        _fail(ValueError("give --grid GRID.yaml (or a subcommand: merge)"))
    from csunet.experiments.grid import parse_shard
    from csunet.experiments.runner import run_grid

    try:
        counts = run_grid(grid, db, parse_shard(shard), out, str(data_root) if data_root else None,
                          say=lambda text: console.print(text, highlight=False))  # fmt: skip
    except (DataError, ValueError, FileNotFoundError) as exc:
        _fail(exc)
    console.print(f"{db}: {counts}", highlight=False)


@benchmark_app.command("merge")
def benchmark_merge(
    sources: Annotated[list[Path], typer.Argument(help="Databases written by shards.")],
    into: Annotated[Path, typer.Option(help="Database to merge into.")] = Path("results.sqlite"),
) -> None:
    """Combine shard databases (a finished run wins over a failed or unfinished one)."""
    from csunet.experiments.store import merge

    missing = [str(p) for p in sources if not p.is_file()]
    if missing:
        _fail(FileNotFoundError(f"no such database: {', '.join(missing)}"))
    console.print(f"{merge(sources, into)} runs merged into {into}", highlight=False)


@app.command()
def tables(
    db: Annotated[Path, typer.Argument(help="Results database.")],
    out: Annotated[Path | None, typer.Option(help="Also write tables.md, tables.csv, tables.tex here.")] = None,
) -> None:
    """The paper's Tables 4-8 from a results database (IoU %, runs per cell, the authors' numbers beside)."""
    from csunet.experiments.store import connect, rows
    from csunet.experiments.tables import paper_tables, to_csv, to_latex, to_markdown
    from csunet.utils import atomic_write_text

    if not db.is_file():
        _fail(FileNotFoundError(f"{db}: no such results database"))
    built = paper_tables(rows(connect(db)))
    markdown = "\n".join(to_markdown(t) for t in built)
    typer.echo(markdown)
    if out:
        atomic_write_text(out / "tables.md", markdown)
        atomic_write_text(out / "tables.csv", "\n".join(f"# {t.title}\n{to_csv(t)}" for t in built))
        atomic_write_text(out / "tables.tex", "\n".join(to_latex(t) for t in built))


@app.command()
def figures(
    db: Annotated[Path, typer.Argument(help="Results database.")],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("figures"),
    task: Annotated[list[str] | None, typer.Option(help="Only these tasks.")] = None,
    data_root: DataRoot = None,
) -> None:
    """The paper's Figures 6-8: test images with the best run of each weights source, error-coloured."""
    from csunet.experiments.figures import task_figures
    from csunet.experiments.store import connect, rows

    if not db.is_file():
        _fail(FileNotFoundError(f"{db}: no such results database"))
    finished = rows(connect(db))
    for name in task or sorted({r["task"] for r in finished}):
        written = task_figures(finished, name, out, str(data_root) if data_root else None,
                               lambda text: console.print(text, highlight=False))  # fmt: skip
        console.print(f"{name}: {len(written)} figures in {out / name}", highlight=False)


@app.command()
def demo(
    out: RunsOption = Path("runs"),
    minutes: Annotated[float, typer.Option(help="Training time budget.")] = 8.0,
) -> None:
    """The main job on the bundled sample (NASA Super-1): train CS-UNet, test it, segment and measure the test
    images, write an HTML report."""
    from csunet.demo import run_demo

    try:
        run_demo(
            print_dataset_info,
            print_metrics,
            show_measurements,
            lambda text: console.print(text, highlight=False),
            out,
            minutes,
        )
    except RuntimeError as exc:
        _fail(exc)


if __name__ == "__main__":
    app()

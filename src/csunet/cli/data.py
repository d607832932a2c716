"""Verbs about inputs: doctor, data, models, weights."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from csunet.cli.apps import app, data_app, models_app, weights_app
from csunet.cli.common import DataRoot, JsonFlag, console, fail, print_json, say, with_model_options
from csunet.models.registry import SETTING_HELP


@app.command()
def doctor(as_json: JsonFlag = False) -> None:
    """Print versions, threads, CUDA devices and folders: what a bug report needs."""
    from csunet.doctor import environment_report

    report = environment_report()
    if as_json:
        print_json(report)
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
    left = ("split", "sizes (WxH)", "image dtype", "mask dtype")
    columns = (
        "split",
        "pairs",
        "unpaired img/mask",
        "sizes (WxH)",
        "image dtype",
        "mask dtype",
        "labelled",
        *classes,
    )
    for column in columns:
        table.add_column(column, justify="left" if column in left else "right", overflow="fold")
    for split, info in report["splits"].items():
        table.add_row(
            split,
            str(info["pairs"]),
            f"{len(info['images_without_mask'])}/{len(info['masks_without_image'])}",
            ", ".join(f"{k} x{v}" for k, v in info["sizes"].items()),
            ", ".join(f"{k} x{v}" for k, v in info["dtypes"].items()),
            ", ".join(f"{k} x{v}" for k, v in info["mask_dtypes"].items()),
            f"{info['labelled_share']:.1%}",
            *(f"{100 * info['class_fractions'][c]:.2f}%" for c in classes),
        )
    console.print(table)
    console.print("class columns: share of the labelled pixels")
    for split, info in report["splits"].items():
        if info["pairs"] and info["labelled_share"] < 1:
            shares = ", ".join(f"{c} {share:.2%}" for c, share in info["class_labelled_shares"].items())
            console.print(
                f"{split}: sparse labels, {info['labelled_share']:.2%} of the pixels labelled ({shares})"
            )
    for message in report["warnings"]:
        say(message, "warning")
    for message in report["errors"]:
        say(message, "error")


@data_app.command("info")
def data_info(
    dataset: Annotated[str, typer.Argument(help="Task name (super-1 .. ebc-3, sample) or a description YAML.")],
    data_root: DataRoot = None,
    as_json: JsonFlag = False,
) -> None:
    """Per split: image count, sizes, dtypes, class pixel fractions, and every problem found."""
    from csunet.data import dataset_info, load_description

    report = dataset_info(load_description(dataset, data_root))
    if as_json:
        print_json(report)
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

    path = write_description(folder, out, overwrite)
    say(f"wrote {path}; review class names and order, then `csunet data info {path}`")
    typer.echo(path.read_text())


@data_app.command("scribble")
def data_scribble(
    dataset: Annotated[str, typer.Argument(help="Task name (super-1 .. ebc-3, sample) or a description YAML.")],
    out: Annotated[Path, typer.Option(help="New folder for the scribble masks and their dataset.yaml.")],
    share: Annotated[float, typer.Option(help="Share of the pixels the strokes cover, e.g. 0.03.")] = 0.03,
    seed: Annotated[int, typer.Option(help="Seed of the simulated strokes.")] = 0,
    data_root: DataRoot = None,
) -> None:
    """Simulate a user's scribbles from complete masks: a sparse copy of DATASET to train on (training and
    validation masks become strokes, test masks stay complete), to learn what sparse labels are worth."""
    from csunet.data.scribbles import write_scribble_dataset

    path = write_scribble_dataset(dataset, out, share, seed, data_root=data_root)
    say(f"wrote {path}: strokes over {share:.1%} of the training and validation pixels; `csunet data info {path}`")


@data_app.command("tasks")
def data_tasks(as_json: JsonFlag = False) -> None:
    """List the built-in NASA benchmark tasks."""
    from csunet.data import list_tasks

    names = list_tasks()
    if as_json:
        print_json(names)
    else:
        typer.echo("\n".join(names))


Encoder = Annotated[str, typer.Option(help=SETTING_HELP["encoder"] + ".")]
Depths = Annotated[str, typer.Option(help=SETTING_HELP["depths"] + ".")]
ImgSize = Annotated[int, typer.Option(help=SETTING_HELP["img_size"] + ".")]
Window = Annotated[int, typer.Option("--window", help=SETTING_HELP["window_size"] + ".")]
Classes = Annotated[int, typer.Option(help="Number of output classes.")]


@models_app.callback(invoke_without_command=True)
def models(
    ctx: typer.Context,
    encoder: Encoder = "resnet50",
    depths: Depths = "intermediate",
    img_size: ImgSize = 512,
    window: Window = 8,
    classes: Classes = 3,
    as_json: JsonFlag = False,
) -> None:
    """List architectures with presets and parameter counts for the given settings, and the installed model
    bundles with their classes and test scores."""
    if ctx.invoked_subcommand is not None:
        return
    from csunet.export.bundle import installed
    from csunet.models.summary import describe_models

    rows = describe_models(
        encoder=encoder, depths=depths, img_size=img_size, window_size=window, num_classes=classes
    )
    bundles = [bundle.describe() for bundle in installed()]
    if as_json:
        print_json({"architectures": rows, "installed": bundles})
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
    show_installed(bundles)


def show_installed(bundles: list[dict]) -> None:
    if not bundles:
        console.print("no model bundles installed (`csunet models install BUNDLE.zip`)")
        return
    table = Table(title="installed models (`csunet predict NAME IMAGES`)")
    for column in ("name", "classes", "test NASA IoU", "µm / pixel", "licence", "folder"):
        table.add_column(column, overflow="fold")
    for bundle in bundles:
        score = bundle["test_nasa_iou"]
        table.add_row(Path(bundle["folder"]).name, ", ".join(bundle["classes"]),
                      "" if score is None else f"{score:.3f}", str(bundle["pixel_size_um"] or ""),
                      str(bundle["license"] or ""), bundle["folder"])  # fmt: skip
    console.print(table)


@models_app.command("install")
def models_install(
    bundle: Annotated[Path, typer.Argument(help="A model bundle (.zip) from `csunet export --bundle`.")],
    name: Annotated[str | None, typer.Option(help="Install under this name (default: the bundle's).")] = None,
) -> None:
    """Verify a model bundle and put it in your model folder; `csunet predict NAME ...` then finds it. Offline."""
    from csunet.export.bundle import install

    if not bundle.is_file():
        fail(f"{bundle}: no such bundle file")
    installed_bundle = install(bundle, name)
    say(f"installed {installed_bundle.name!r} as {installed_bundle.folder.name} in {installed_bundle.folder.parent}; "
        f"`csunet predict {installed_bundle.folder.name} IMAGES --out DIR`")  # fmt: skip


@weights_app.command("list")
def weights_list(as_json: JsonFlag = False) -> None:
    """Catalogued weight files (NASA MicroNet CNNs, ImageNet Swin-T) and whether they are cached."""
    from csunet.weights import list_weights

    rows = list_weights()
    if as_json:
        print_json(rows)
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
    from csunet.weights import fetch

    path = fetch(name, url=url)
    say(f"{name}: {path}")


@weights_app.command("import")
def weights_import(
    file: Annotated[Path, typer.Argument(help="A weight file obtained elsewhere.")],
    name: Annotated[str, typer.Argument(help="Catalogue name it stands for, e.g. resnet50.micronet.")],
) -> None:
    """Put a weight file into the cache under a catalogue name (checked to load safely first)."""
    from csunet.weights import import_file

    path = import_file(file, name)
    say(f"{name}: imported to {path}")


@weights_app.command("inspect")
def weights_inspect(
    file: Annotated[Path, typer.Argument(help="Checkpoint file.")], as_json: JsonFlag = False
) -> None:
    """Format, tensor and parameter counts, dtypes, groups and SHA-256 of a checkpoint."""
    from csunet.weights import inspect_file

    info = inspect_file(file)
    if as_json:
        print_json(info)
        return
    for key in ("path", "format", "tensors", "parameters", "dtypes", "sha256"):
        say(f"{key}: {info[key]}")
    for group, count in info["groups"].items():
        say(f"  {group}: {count:,} parameters")


@weights_app.command("check")
@with_model_options(skip=("drop_path_rate",))
def weights_check(
    model_settings: dict,
    model: Annotated[str, typer.Argument(help="Architecture, e.g. cs_unet.")] = "cs_unet",
    swin: Annotated[str | None, typer.Option(help="Swin checkpoint file or catalogue name.")] = None,
    cnn: Annotated[str | None, typer.Option(help="imagenet, micronet, image-micronet, or a file.")] = None,
    classes: Classes = 3,
    as_json: JsonFlag = False,
) -> None:
    """Build a model, load weights into it and print exactly what loaded, was resized, or stayed fresh."""
    from csunet.models import create_model
    from csunet.weights import load_pretrained

    net = create_model(model, num_classes=classes, **model_settings)
    reports = load_pretrained(net, swin=swin, cnn=cnn, encoder_name=model_settings.get("encoder"))
    if as_json:
        print_json([r.to_dict() for r in reports])
    else:
        for report in reports:
            say(str(report))

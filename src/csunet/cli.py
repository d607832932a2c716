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


@app.command()
def demo() -> None:
    """The main job on the bundled sample (NASA Super-1)."""
    from csunet.demo import run_demo

    run_demo(print_dataset_info)


if __name__ == "__main__":
    app()

"""Verbs about results: measure, report, benchmark, tables, figures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from csunet.cli.apps import app, benchmark_app
from csunet.cli.common import DataRoot, ExportOption, JsonFlag, console, fail, print_json, say


def _kinds(pairs: list[str]) -> dict[str, str]:
    kinds = {}
    for pair in pairs:
        name, sep, kind = pair.partition("=")
        if not sep:
            fail(f"--kind takes CLASS=KIND (e.g. oxide=layer), not {pair!r}")
        kinds[name] = kind
    return kinds


@app.command()
def measure(
    inputs: Annotated[
        list[Path], typer.Argument(help="Index masks, or folders of them (e.g. `csunet predict` output).")
    ],
    out: Annotated[Path, typer.Option(help="Folder for the CSV tables and summary.json.")] = Path("measurements"),
    pixel_size: Annotated[
        float | None,
        typer.Option(
            "--pixel-size",
            help="Micrometres per pixel (default: what the images' TIFF files record, else the model's training pixel size).",
        ),
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
    export: ExportOption = [],  # noqa: B006
    as_json: JsonFlag = False,
) -> None:
    """Phase fractions, particle sizes, layer thickness and grain size from masks, as CSV tables and a summary."""
    from csunet.measure import measure as measure_masks

    summary = measure_masks(
        inputs,
        out,
        pixel_size,
        min_size,
        include_border,
        _kinds(kind),
        classes.split(",") if classes else None,
        export,
    )
    if as_json:
        print_json(summary)
        return
    show_measurements(summary)


def show_measurements(summary: dict) -> None:
    from csunet.morphometry import size_summary, with_interval

    unit = summary["unit"]
    table = Table(title=f"{summary['masks']} masks, lengths in {unit}" + (
        f" ({summary['pixel_size_um']:.4g} um per pixel)" if summary["pixel_size_um"] else " (no pixel size given)"
    ))  # fmt: skip
    source = summary["pixel_size_source"]
    console.print(f"pixel size {'' if source.startswith('not known') else 'from '}{source}")
    for column in ("class", "kind", "area fraction", "count", "size / thickness / G"):
        table.add_column(column)
    for name, entry in summary["per_class"].items():
        fraction = with_interval(entry, "area_fraction_mean")
        count = with_interval(entry, "count") if "count" in entry else ""
        table.add_row(name, entry["kind"], fraction, count, size_summary(entry, unit))
    console.print(table)
    say(summary["intervals"])
    say("tables: " + ", ".join(summary["files"].values()))


@app.command()
def report(
    source: Annotated[Path, typer.Argument(help="A run folder (from `csunet train`) or a folder of predictions.")],
    out: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("report.html"),
) -> None:
    """One self-contained HTML page: metrics, curves, panels, measurements and histograms, configuration."""
    from csunet.report import build_report

    path = build_report(source, out, say=lambda text: say(text))
    say(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB); open it in any browser")


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
        fail("give --grid GRID.yaml (or a subcommand: merge)")
    from csunet.experiments.runner import run_grid
    from csunet.sharding import parse_shard

    counts = run_grid(grid, db, parse_shard(shard), out, str(data_root) if data_root else None,
                      say=lambda text: say(text))  # fmt: skip
    say(f"{db}: {counts}")


@benchmark_app.command("merge")
def benchmark_merge(
    sources: Annotated[list[Path], typer.Argument(help="Databases written by shards.")],
    into: Annotated[Path, typer.Option(help="Database to merge into.")] = Path("results.sqlite"),
) -> None:
    """Combine shard databases (a finished run wins over a failed or unfinished one)."""
    from csunet.experiments.store import merge

    counts = merge(sources, into)
    say(
        f"{into}: {counts['runs']} runs ({counts['added']} added, {counts['replaced']} replaced by a finished run, "
        f"{counts['unchanged']} already there)"
    )
    for conflict in counts["conflicts"]:
        say(conflict, "conflict")


@app.command()
def tables(
    db: Annotated[Path, typer.Argument(help="Results database.")],
    out: Annotated[Path | None, typer.Option(help="Also write tables.md, tables.csv, tables.tex here.")] = None,
) -> None:
    """The paper's Tables 4-8 from a results database (IoU %, runs per cell, the authors' numbers beside)."""
    from csunet.experiments.store import connect, rows
    from csunet.experiments.tables import paper_tables, to_csv, to_latex, to_markdown
    from csunet.utils import atomic_write_text

    built = paper_tables(rows(connect(db, read_only=True)))
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

    finished = rows(connect(db, read_only=True))
    for name in task or sorted({r["task"] for r in finished}):
        written = task_figures(finished, name, out, str(data_root) if data_root else None,
                               say)  # fmt: skip
        say(f"{name}: {len(written)} figures in {out / name}")

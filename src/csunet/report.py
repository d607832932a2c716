"""One self-contained HTML report of a training run or a folder of predictions, readable from disk without a server.

For a run folder: test metrics, training curves, per test image the image / truth / prediction / error panel,
measurements of the test predictions with histograms, and the resolved configuration. For a predictions folder:
the overlays and the measurements. Every picture is embedded as a data URI. Missing panels and predictions of a
run are made first (into the run folder, as `make demo` would have).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
import time
from pathlib import Path

import numpy as np

from csunet.errors import MissingInputError
from csunet.measure import measure
from csunet.morphometry import agreement_rows, size_summary, with_interval
from csunet.prediction_folder import MASK_SUFFIX, PREDICTIONS_MANIFEST
from csunet.runs import RunFolder
from csunet.utils import atomic_write_text, writable_file

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ccc; padding: .25em .6em; }
th { background: #f3f3f3; text-align: left; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; } figure { margin: 1em 0; } figcaption { color: #555; font-size: .9em; }
.row { display: flex; flex-wrap: wrap; gap: 1em; } .row figure { flex: 1 1 360px; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: .85em; }
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure(png: bytes, caption: str, alt: str) -> str:
    return (
        f'<figure><img src="{data_uri(png)}" alt="{html.escape(alt)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _table(header: list[str], rows: list[list]) -> str:
    def cell(value) -> str:
        if isinstance(value, float):
            return f'<td class="number">{value:.4g}</td>'
        if isinstance(value, int):
            return f'<td class="number">{value}</td>'
        return f"<td>{html.escape(str(value))}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _histogram(
    values: list[float], title: str, xlabel: str, against: dict[str, list[float]] | None = None
) -> bytes:
    """A histogram of ``values``; with ``against`` (label -> values), step outlines of each on the same bins."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    pooled = values + [v for series in (against or {}).values() for v in series]
    bins = np.histogram_bin_edges(pooled, bins=min(40, max(5, len(values) // 3)))
    if against:
        for (label, series), colour in zip(against.items(), ("#222222", "#d1495b")):
            ax.hist(
                series, bins=bins, histtype="step", linewidth=1.6, color=colour, label=f"{label} ({len(series)})"
            )
        ax.legend(fontsize=8)
    else:
        ax.hist(values, bins=bins, color="#3b6ea8", edgecolor="white")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def measurement_section(summary: dict, folder: Path) -> str:
    """Summary table and histograms of what :func:`csunet.measure.measure` wrote to ``folder``."""
    unit = summary["unit"]
    rows = []
    for name, entry in summary["per_class"].items():
        rows.append([name, entry["kind"], with_interval(entry, "area_fraction_mean"), entry["area_fraction_std"],
                     with_interval(entry, "count") if "count" in entry else "", size_summary(entry, unit)])  # fmt: skip
    parts = [
        f"<p>{summary['masks']} masks; lengths in {unit}"
        + (
            f" ({summary['pixel_size_um']:.4g} µm per pixel, from {html.escape(summary.get('pixel_size_source', '?'))})"
            if summary["pixel_size_um"]
            else " (no pixel size known)"
        )
        + f"; particles under {summary['min_size_px']} pixels dropped; particles cut by the border "
        + ("included in" if summary["border_particles_in_sizes"] else "left out of")
        + f" size statistics. {html.escape(summary['intervals'])}.</p>",
        _table(["class", "kind", "area fraction (mean)", "(std over images)", "count", "sizes"], rows),
    ]
    figures = []
    particles = _read_csv(folder / "particles.csv")
    for name, entry in summary["per_class"].items():
        if entry["kind"] == "particle":
            with_border = summary["border_particles_in_sizes"]
            sized = [float(p[f"ecd_{unit}"]) for p in particles
                     if p["class"] == name and (with_border or p["touches_border"] == "False")]  # fmt: skip
            if sized:
                figures.append(_figure(_histogram(sized, f"{name}: equivalent circle diameter", unit),
                                       f"{name}: {len(sized)} particles", f"{name} size histogram"))  # fmt: skip
        elif entry["kind"] == "layer":
            values = [
                float(r[f"thickness_{unit}"]) for r in _read_csv(folder / "thickness.csv") if r["class"] == name
            ]
            values = [v for v in values if v > 0]
            if values:
                figures.append(_figure(_histogram(values, f"{name}: thickness along the layer", unit),
                                       f"{name}: {len(values)} positions", f"{name} thickness histogram"))  # fmt: skip
        elif entry["kind"] == "boundary":
            grains = [float(g[f"ecd_{unit}"]) for g in _read_csv(folder / "grains.csv")
                      if g["class"] == name and g["touches_border"] == "False"]  # fmt: skip
            if grains:
                figures.append(_figure(_histogram(grains, f"{name}: grain diameter", unit),
                                       f"{len(grains)} grains", "grain size histogram"))  # fmt: skip
    if figures:
        parts.append('<div class="row">' + "".join(figures) + "</div>")
    return "\n".join(parts)


def _metrics_section(test: dict) -> str:
    rows = [["NASA IoU (pooled, mean over images)", test["nasa_iou"]],
            ["mean IoU without background", test["miou_without_background"]]]  # fmt: skip
    rows += [[f"IoU {name}", value] for name, value in test["per_class_iou"].items()]
    per_image = [[r["image"], r["nasa_iou"]] for r in test.get("per_image", [])]
    return (
        f"<p>{html.escape(str(test.get('data', '')))} / {html.escape(str(test.get('split', '')))} split, "
        f"{test.get('images', len(per_image))} images.</p>"
        + _table(["metric", "value"], rows)
        + (_table(["image", "NASA IoU"], per_image) if per_image else "")
        + (_agreement_section(test) if "measurement_agreement" in test else "")
    )


def _agreement_section(test: dict) -> str:
    """The measurements of the predicted masks against the truth's: a table, and truth-vs-predicted particle
    sizes."""
    found = test["measurement_agreement"]
    figures = [
        _figure(_histogram(sizes["truth"], f"{name}: equivalent circle diameter", found["unit"], sizes),
                f"{name}: truth and predicted particle sizes", f"{name} truth and predicted size histograms")
        for name, sizes in found["particle_sizes"].items() if sizes["truth"] or sizes["predicted"]
    ]  # fmt: skip
    return (
        f"<h3>Measurements against the truth</h3><p>The predicted masks (clean-up: {html.escape(test['cleanup'])}) "
        f"and the true masks of the {found['images']} images, measured by the same code with the same settings "
        f"(particles from {found['min_size_px']} px, border particles left out of sizes). Relative errors in %, "
        "area fractions and ASTM G as differences.</p>"
        + _table(["class", "measure", "truth", "predicted", "error"], agreement_rows(found))
        + ('<div class="row">' + "".join(figures) + "</div>" if figures else "")
    )


def _ensure_run_outputs(run: Path, say) -> tuple[Path, Path]:
    """The run's error panels and test predictions, made now if the run has none."""
    from csunet.data import load_description
    from csunet.evaluate import evaluate
    from csunet.predict import predict
    from csunet.train import TrainConfig

    folder = RunFolder(run)
    checkpoint, figures, predictions = folder.best, folder.figures, folder.predictions
    missing_figures = not any(figures.glob("*_panel.png"))
    missing_predictions = not (predictions / PREDICTIONS_MANIFEST).is_file()
    if (missing_figures or missing_predictions) and not checkpoint.is_file():
        raise MissingInputError(
            f"{run}: no checkpoints/best.ckpt to make the report's panels and predictions from"
        )
    if not (missing_figures or missing_predictions):
        return figures, predictions
    # the run's data, and the overlap and test-time augmentation its test split was scored with: the panels and the
    # measured masks are then those of the metrics the report shows beside them
    config = TrainConfig.load(folder.config)
    if missing_figures:
        say(f"making error panels in {figures}")
        evaluate(checkpoint, config.data, "test", config.data_root, overlap=config.val_overlap, tta=config.tta,
                 figures=figures, progress=False)  # fmt: skip
    if missing_predictions:
        description = load_description(config.data, config.data_root)
        say(f"segmenting the test images into {predictions}")
        # a few test images: exporting for a faster engine would cost more than it saves
        predict(checkpoint, [description.split("test").images], predictions, overlap=config.val_overlap,
                tta=config.tta, progress=False, overwrite=True, engine="torch")  # fmt: skip
    return figures, predictions


def build_report(source: str | os.PathLike, out: str | os.PathLike, say=print) -> Path:
    """Write the HTML report of a run folder or a predictions folder to ``out``; returns its path."""
    source, out = Path(source), writable_file(out, "report")
    run = RunFolder(source)
    is_run = run.is_run()
    if not is_run and not (source.is_dir() and any(source.glob(f"*{MASK_SUFFIX}.*"))):
        raise MissingInputError(f"{source}: neither a run folder (config.yaml) nor a folder of predicted masks")
    sections = []
    title = f"csunet report: {source.name}"
    if is_run:
        figures, predictions = _ensure_run_outputs(source, say)
        summary = json.loads(run.summary.read_text()) if run.summary.is_file() else {}
        if run.test_metrics.is_file():
            sections.append(("Test metrics", _metrics_section(json.loads(run.test_metrics.read_text()))))
        if summary:
            facts = [[key, summary[key]] for key in ("epochs", "steps", "best_val_iou", "stopped_by",
                                                      "wall_seconds_this_session") if key in summary]  # fmt: skip
            sections.append(("Training", _table(["run", "value"], facts)))
        curves = [_figure((source / f).read_bytes(), caption, caption) for f, caption in
                  (("loss.png", "training and validation loss"), ("iou.png", "validation IoU"))
                  if (source / f).is_file()]  # fmt: skip
        if curves:
            sections.append(("Training curves", '<div class="row">' + "".join(curves) + "</div>"))
        panels = [_figure(p.read_bytes(), p.name.removesuffix("_panel.png"), f"panel {p.name}")
                  for p in sorted(figures.glob("*_panel.png"))]  # fmt: skip
        sections.append(("Test images: image, truth, prediction, errors", "".join(panels)
                         + "<p>Errors per class against the rest: white true positive, black true negative, red false "
                         "positive, cyan false negative, grey unlabelled.</p>"))  # fmt: skip
    else:
        predictions = source
        overlays = [_figure(p.read_bytes(), p.name.removesuffix("_overlay.png"), f"overlay {p.name}")
                    for p in sorted(source.glob("*_overlay.png"))]  # fmt: skip
        if overlays:
            sections.append(("Predictions", '<div class="row">' + "".join(overlays) + "</div>"))
    measured = measure([predictions], run.measurements if is_run else out.parent / f"{out.stem}_measurements")
    sections.append(("Measurements", measurement_section(measured, Path(measured["files"]["images.csv"]).parent)))
    if is_run:
        sections.append(("Configuration", f"<pre>{html.escape(run.config.read_text())}</pre>"))
    body = "\n".join(f"<h2>{html.escape(name)}</h2>\n{content}" for name, content in sections)
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(str(source.resolve()))}, {time.strftime('%Y-%m-%d %H:%M')}</p>\n{body}\n</body></html>\n"
    )
    atomic_write_text(out, page)
    return out

"""`csunet measure`: measure the masks of a prediction folder (or any index masks) and write the tables.

What is measured, and how, is :mod:`csunet.morphometry`; this verb finds the masks (a prediction folder's manifest
names them, their classes and pixel size), refuses what cannot be measured, and writes images.csv, particles.csv,
grains.csv, thickness.csv and summary.json.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from csunet.data.description import default_colours
from csunet.data.errors import DataError
from csunet.data.io import collect_files, is_image_file, read_array
from csunet.errors import SettingsError
from csunet.interchange import check_exports, write_vector_exports
from csunet.morphometry import (
    MeasureSettings,
    interval_note,
    mask_classes,
    measure_masks,
    summarise,
    without_nan,
)
from csunet.prediction_folder import (
    MANIFEST_GLOB,
    MASK_SUFFIX,
    PREDICTIONS_MANIFEST,
    manifest_path,
    read_manifest,
)
from csunet.utils import atomic_write_text, writable_folder


def read_index_mask(path: Path) -> np.ndarray:
    """A class-index mask (as `csunet predict` writes): 2-D integers; colour masks are refused by name."""
    mask = read_array(path)
    if mask.ndim != 2:
        raise DataError(
            f"{path}: a {mask.ndim}-D array of shape {mask.shape}; measure needs index masks (one class number per "
            "pixel), as `csunet predict` writes them (NAME_mask.png)"
        )
    if not np.issubdtype(mask.dtype, np.integer):
        raise DataError(f"{path}: mask values are {mask.dtype}, not class numbers")
    return mask


def collect_masks(inputs: list[str | os.PathLike]) -> list[Path]:
    """Mask files named directly, or in folders: a prediction folder's masks as its ``predictions.json`` lists them
    (never other files lying there), else the folder's ``*_mask`` files when there are any, else every image."""
    return collect_files(inputs, _folder_masks)


def _folder_masks(folder: Path) -> list[Path]:
    manifest = read_manifest(folder)
    if manifest:
        if not manifest.get("complete", True):
            done = sum(1 for record in manifest.get("images", []) if "mask" in record)
            raise DataError(
                f"{manifest_path(folder)}: the prediction run stopped after {done} of {manifest.get('inputs', '?')} "
                "images; run the same `csunet predict` command again to finish it, or name the mask files to measure"
            )
        listed = [folder / Path(record["mask"]).name for record in manifest.get("images", []) if "mask" in record]
        missing = [str(path) for path in listed if not path.is_file()]
        if missing:
            raise DataError(f"{manifest_path(folder)} lists masks that are gone: {', '.join(missing[:3])}")
        return listed
    shards = sorted(p.name for p in folder.glob(MANIFEST_GLOB))
    if shards:
        raise DataError(
            f"{folder}: a sharded prediction run that has not finished ({', '.join(shards)} but no "
            f"{PREDICTIONS_MANIFEST}, which the last shard to finish writes)"
        )
    images = sorted(p for p in folder.iterdir() if is_image_file(p))
    masks = [p for p in images if p.stem.endswith(MASK_SUFFIX)]
    if not (masks or images):
        raise DataError(f"{folder}: folder holds no masks")
    return masks or images


def _csv_text(rows: list[dict]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {key: (f"{value:.6g}" if isinstance(value, float) else value) for key, value in row.items()}
        )
    return buffer.getvalue()


def measure(
    inputs: list[str | os.PathLike],
    out: str | os.PathLike = "measurements",
    pixel_size_um: float | None = None,
    min_size_px: int = 5,
    include_border: bool = False,
    kinds: dict[str, str] | None = None,
    classes: list[str] | None = None,
    exports: list[str] | None = None,
) -> dict:
    """Measure every mask in ``inputs``; write images.csv, particles.csv, grains.csv, thickness.csv and
    summary.json to ``out`` and return the summary; with ``exports`` (roi, geojson) also each mask's regions as an
    ImageJ ROI set and GeoJSON polygons carrying their measurements.

    Class names and pixel size come from the predictions manifest when there is one; arguments override it.
    """
    exports = check_exports(exports)
    if "ome-zarr" in exports:
        raise SettingsError(
            "measure has masks, not their images: write OME-Zarr with `csunet predict --export ome-zarr`"
        )
    paths = collect_masks(inputs)
    manifests = input_manifests(inputs)
    manifest = shared_manifest(manifests)
    named = {}
    for path in paths:
        name = path.name.removesuffix(path.suffix).removesuffix(MASK_SUFFIX)
        if name in named:
            raise DataError(f"two masks of one image name {name!r}: {named[name]} and {path}; measure them apart")
        named[name] = path
    masks = {path: read_index_mask(path) for path in paths}
    classes = mask_classes(list(masks.values()), classes or manifest.get("classes"))
    pixel, source = measured_pixel_size(pixel_size_um, list(named.values()), manifests)
    settings = MeasureSettings(
        classes, pixel, min_size_px, include_border, dict(kinds or {}), manifest.get("background", 0)
    )
    by_name = {name: masks[path] for name, path in named.items()}
    writable_folder(out, "measurements folder")  # the inputs are sound: say now, before measuring, if out is not
    collected = measure_masks(by_name, settings)
    colours = manifest.get("colours") or default_colours(len(classes))
    exported = {}
    for name, mask in by_name.items():
        particles = {(p["class"], p["particle"]): p for p in collected["particles"] if p["image"] == name}
        written = write_vector_exports(out, name, mask, classes, colours, settings.background, exports,
                                       settings.min_size_px, particles)  # fmt: skip
        exported |= {f"{name} {kind}": path for kind, path in written.items()}
    return write_measurements(collected, settings, out, source, exported)


def measured_pixel_size(
    given: float | None, masks: list[Path], manifests: dict[Path, dict]
) -> tuple[float | None, str]:
    """(micrometres per pixel, where from): ``--pixel-size``; else what the images' files record (``csunet predict``
    keeps it in each image's record), the same for every mask; else the model's training pixel size."""
    if given is not None:
        return given, "--pixel-size"
    recorded = {}
    for manifest in manifests.values():
        for record in manifest.get("images", []):
            if "mask" in record and "pixel_size_um" in record:
                recorded[Path(record["mask"]).resolve()] = (record["pixel_size_um"], record["pixel_size_source"])
    found = {path: recorded.get(path.resolve()) for path in masks}
    known = {path: entry for path, entry in found.items() if entry}
    if known:
        sizes = sorted(um for um, _ in known.values())
        if sizes[-1] > sizes[0] * 1.01 or len(known) < len(found):
            without = [path.name for path, entry in found.items() if not entry]
            raise DataError(
                f"the images of these masks record pixel sizes from {sizes[0]:.4g} to {sizes[-1]:.4g} µm"
                + (f" and {len(without)} record none ({', '.join(without[:3])})" if without else "")
                + ": measure each magnification apart, or give --pixel-size"
            )
        return sizes[0], f"the images' files: {next(iter(known.values()))[1]}"
    trained = next(iter(manifests.values()), {}).get("pixel_size_um")  # one for all: shared_manifest checked it
    if trained:
        return trained, "the model's training data"
    return None, "not known: lengths in pixels"


def input_manifests(inputs: list[str | os.PathLike]) -> dict[Path, dict]:
    """The predictions manifest of each input's folder, read once (folders without one left out)."""
    found: dict[Path, dict] = {}
    for item in map(Path, inputs):
        folder = item if item.is_dir() else item.parent
        if folder not in found:
            found[folder] = read_manifest(folder)
    return {folder: manifest for folder, manifest in found.items() if manifest}


def shared_manifest(found: dict[Path, dict]) -> dict:
    """The predictions manifest that the inputs' folders (``found``: :func:`input_manifests`) share (classes,
    background, pixel size); inputs from runs that disagree on them are refused by name, since one class table
    cannot name both."""
    keys = ("classes", "background", "pixel_size_um")
    first = next(iter(found.items()), None)
    for folder, manifest in found.items():
        differ = [key for key in keys if manifest.get(key) != first[1].get(key)]
        if differ:
            details = "; ".join(f"{key} {first[1].get(key)!r} there, {manifest.get(key)!r} here" for key in differ)
            raise DataError(
                f"{folder}: predictions of another model than those in {first[0]} ({details}); measure each run apart"
            )
    return first[1] if first else {}


def write_measurements(
    collected: dict[str, list],
    settings: MeasureSettings,
    out: str | os.PathLike,
    pixel_size_source: str = "",
    exported: dict[str, str] | None = None,
) -> dict:
    """Write the tables of :func:`measure_masks` as CSV files and ``summary.json`` into ``out``; return the
    summary, which lists those files and the ``exported`` ones (ROI sets, GeoJSON) beside them."""
    out = Path(out)
    unit = settings.unit
    thickness_rows = [
        {"image": p["image"], "class": p["class"], "position_px": i, f"thickness_{unit}": value}
        for p in collected["profiles"]
        for i, value in enumerate(p["thickness"])
    ]
    files = {"images.csv": collected["images"], "particles.csv": collected["particles"],
             "grains.csv": collected["grains"], "thickness.csv": thickness_rows}  # fmt: skip
    for file_name, rows in files.items():
        if rows:
            atomic_write_text(out / file_name, _csv_text(rows))
    summary = {
        "masks": len({row["image"] for row in collected["images"]}),
        "classes": settings.classes,
        "unit": unit,
        "pixel_size_um": settings.pixel_size_um,
        "pixel_size_source": pixel_size_source or ("given" if settings.pixel_size_um else "not known"),
        "min_size_px": settings.min_size_px,
        "border_particles_in_sizes": settings.include_border,
        "intervals": interval_note(len({row["image"] for row in collected["images"]})),
        "per_class": summarise(collected["images"], collected["particles"], settings),
        "files": {name: str(out / name) for name, rows in files.items() if rows} | (exported or {}),
    }
    summary = without_nan(summary)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary

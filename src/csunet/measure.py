"""From masks to numbers: phase fractions, particle sizes, layer thickness and grain size.

Each class is measured as one of four kinds:

- ``matrix``: area fraction only (class 0 by default).
- ``particle``: connected regions (8-connectivity); count, number density, area, equivalent circle diameter, max/min
  Feret diameter (calipers on the convex hull of the outline, pixels as unit discs), aspect ratio (max/min Feret), centroid and
  nearest-neighbour spacing. Particles touching the image border are flagged and left out of size statistics unless
  asked (they are cut, so their sizes are wrong); they still count as neighbours. Regions below a minimum size are
  dropped as noise.
- ``layer``: a band across the image (e.g. EBC oxide): thickness across the layer at every column (or row,
  whichever way the layer runs; corrected for the layer's local tilt) and its mean, standard deviation, minimum and
  maximum.
- ``boundary``: grain-boundary pixels; grains are the 4-connected regions between them. Grain areas and diameters,
  and the ASTM E112 grain size number by the planimetric (Jeffries) method when the pixel size is known:
  N_A = (grains inside + grains cut by the border / 2) / area in mm^2 at 1x, G = 3.321928 log10(N_A) - 2.954.

Lengths are in micrometres when a pixel size is known and in pixels otherwise; every column name says which.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.ndimage import binary_erosion
from scipy.spatial import ConvexHull, cKDTree
from scipy.spatial.distance import pdist
from skimage.measure import label, regionprops

from csunet.data.errors import DataError
from csunet.data.io import is_image_file, read_array
from csunet.data.masks import IGNORE_INDEX
from csunet.errors import SettingsError, check_range
from csunet.prediction_folder import (
    MANIFEST_GLOB,
    MASK_SUFFIX,
    PREDICTIONS_MANIFEST,
    manifest_path,
    read_manifest,
)
from csunet.utils import atomic_write_text

KINDS = ("matrix", "particle", "layer", "boundary")
LAYER_NAMES = {"oxide", "layer", "coating", "scale", "tgo", "film"}
BOUNDARY_NAMES = {"boundary", "boundaries", "grain_boundary", "grain boundary", "grain-boundary", "gb"}
"""Written by `csunet predict` beside the masks: classes, colours and pixel size for measuring them."""


def default_kind(index: int, name: str, background: int | None = 0) -> str:
    """The background class is the matrix; layer and boundary classes are recognised by name; the rest are
    particles."""
    lowered = name.lower()
    if lowered in BOUNDARY_NAMES:
        return "boundary"
    if lowered in LAYER_NAMES:
        return "layer"
    return "matrix" if index == background else "particle"


@dataclass
class MeasureSettings:
    classes: list[str]
    pixel_size_um: float | None = None
    min_size_px: int = 5
    """Particles and grains with fewer pixels are dropped as noise."""
    include_border: bool = False
    """Count particles touching the border in size statistics too."""
    kinds: dict[str, str] = field(default_factory=dict)
    """Class name -> kind, overriding :func:`default_kind`."""
    background: int | None = 0
    """Index of the background (matrix) class, as the dataset description says; None: no matrix."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kinds) - set(self.classes))
        if unknown:
            raise SettingsError(f"--kind names unknown classes {unknown}; the classes are {self.classes}")
        bad = sorted(kind for kind in self.kinds.values() if kind not in KINDS)
        if bad:
            raise SettingsError(f"unknown measurement kinds {bad}; choose from {', '.join(KINDS)}")
        check_range("measurement", "pixel size", self.pixel_size_um, 0, low_open=True, optional=True)

    def kind(self, index: int) -> str:
        name = self.classes[index]
        return self.kinds.get(name, default_kind(index, name, self.background))

    @property
    def unit(self) -> str:
        return "um" if self.pixel_size_um else "px"

    @property
    def scale(self) -> float:
        return self.pixel_size_um or 1.0


# ---------------------------------------------------------------- geometry


def feret_diameters(region: np.ndarray) -> tuple[float, float]:
    """(max, min) caliper diameter in pixels of a boolean region.

    Calipers close on the convex hull of the outline's pixel centres; each pixel counts as a disc of diameter 1,
    which adds one pixel in every direction. A single pixel measures 1 x 1, a 10 x 40 rectangle has a minimum
    Feret diameter of 10, and a digitised disc of radius r measures about 2r + 1 whichever way.
    """
    coords = np.argwhere(region & ~binary_erosion(region)).astype(float)
    if len(coords) < 3 or np.linalg.matrix_rank(coords - coords[0]) < 2:  # a point or a straight line
        return (float(pdist(coords).max()) if len(coords) > 1 else 0.0) + 1.0, 1.0
    hull = coords[ConvexHull(coords).vertices]
    longest = float(pdist(hull).max())
    edges = np.roll(hull, -1, axis=0) - hull
    relative = hull[None, :, :] - hull[:, None, :]
    cross = np.abs(edges[:, None, 0] * relative[..., 1] - edges[:, None, 1] * relative[..., 0])
    widths = cross.max(axis=1) / np.linalg.norm(edges, axis=1)
    return longest + 1.0, float(widths.min()) + 1.0


def area_fractions(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """Share of the labelled pixels (unlabelled 255 left out) in each class."""
    counts = np.bincount(mask[mask != IGNORE_INDEX].ravel(), minlength=num_classes)[:num_classes]
    return counts / max(int(counts.sum()), 1)


def _regions(labels: np.ndarray, min_size_px: int):
    """(region, record) for each labelled region of at least ``min_size_px`` pixels; the record holds centroid,
    area, equivalent circle diameter (pixels) and whether the region touches the image border."""
    height, width = labels.shape
    for region in regionprops(labels):
        if region.area < min_size_px:
            continue
        top, left, bottom, right = region.bbox
        yield (
            region,
            {
                "centroid_y": float(region.centroid[0]),
                "centroid_x": float(region.centroid[1]),
                "area": float(region.area),
                "ecd": float(region.equivalent_diameter_area),
                "touches_border": bool(top == 0 or left == 0 or bottom == height or right == width),
            },
        )


def measure_particles(region_mask: np.ndarray, min_size_px: int) -> list[dict]:
    """One record per connected particle (pixel units), with nearest-neighbour distance between centroids."""
    records = []
    for region, record in _regions(label(region_mask, connectivity=2), min_size_px):
        longest, shortest = feret_diameters(np.pad(region.image, 1))
        records.append({**record, "feret_max": longest, "feret_min": shortest, "aspect_ratio": longest / shortest})
    if len(records) > 1:
        centroids = np.array([[r["centroid_y"], r["centroid_x"]] for r in records])
        distances, _ = cKDTree(centroids).query(centroids, k=2)
        for record, distance in zip(records, distances[:, 1]):
            record["nn_distance"] = float(distance)
    else:
        for record in records:
            record["nn_distance"] = float("nan")
    return records


def layer_thickness(region_mask: np.ndarray) -> dict:
    """Thickness (pixels) of a layer at every position along it, and its statistics.

    The layer runs along the axis on which more lines cross it: columns for a horizontal layer, rows otherwise.
    A line crossing a tilted layer cuts it obliquely, so each crossing's pixel count is multiplied by the cosine of
    the layer's local tilt, taken from the slope of its centre line smoothed over about one thickness.
    """
    horizontal = region_mask.any(axis=0).mean() >= region_mask.any(axis=1).mean()
    grid = region_mask if horizontal else region_mask.T  # the layer runs along grid's columns
    counts = grid.sum(axis=0).astype(float)
    positions = np.flatnonzero(counts)
    stats = {
        "orientation": "horizontal" if horizontal else "vertical",
        "coverage": float(positions.size / counts.size),
    }
    if positions.size == 0:
        return {**stats, "mean": float("nan"), "std": float("nan"), "min": float("nan"), "max": float("nan"),
                "profile": counts}  # fmt: skip
    thickness = counts.copy()
    if positions.size > 2:
        centre = (grid[:, positions] * np.arange(grid.shape[0])[:, None]).sum(axis=0) / counts[positions]
        width = int(np.median(counts[positions])) | 1  # odd, about one thickness
        smooth = np.convolve(np.pad(centre, width // 2, mode="edge"), np.ones(width) / width, mode="valid")
        slope = np.gradient(smooth, positions)
        thickness[positions] = counts[positions] / np.sqrt(1 + slope**2)
    covered = thickness[positions]
    return {**stats, "mean": float(covered.mean()), "std": float(covered.std()), "min": float(covered.min()),
            "max": float(covered.max()), "profile": thickness}  # fmt: skip


def astm_grain_size_number(inside: int, cut: int, area_mm2: float) -> float:
    """ASTM E112 planimetric (Jeffries) method: G from grains per mm^2 at 1x, counting cut grains as halves."""
    grains_per_mm2 = (inside + 0.5 * cut) / area_mm2
    return 3.321928 * math.log10(grains_per_mm2) - 2.954


def measure_grains(boundary_mask: np.ndarray, min_size_px: int) -> list[dict]:
    """Grains = 4-connected regions free of boundary pixels; area (pixels), ECD and whether the border cuts them."""
    return [record for _, record in _regions(label(~boundary_mask, connectivity=1), min_size_px)]


# ---------------------------------------------------------------- one mask, many masks


def _scaled(record: dict, settings: MeasureSettings, lengths: tuple[str, ...], areas: tuple[str, ...]) -> dict:
    unit, scale = settings.unit, settings.scale
    out = {}
    for key, value in record.items():
        if key in lengths:
            out[f"{key}_{unit}"] = value * scale
        elif key in areas:
            out[f"{key}_{unit}2"] = value * scale**2
        else:
            out[key] = value
    return out


PARTICLE_LENGTHS = ("centroid_y", "centroid_x", "ecd", "feret_max", "feret_min", "nn_distance")


def _size_stats(values: list[float], prefix: str) -> dict:
    if not values:
        return {f"{prefix}_{name}": float("nan") for name in ("mean", "std", "d10", "d50", "d90")}
    array = np.asarray(values)
    return {
        f"{prefix}_mean": float(array.mean()),
        f"{prefix}_std": float(array.std()),
        f"{prefix}_d10": float(np.percentile(array, 10)),
        f"{prefix}_d50": float(np.percentile(array, 50)),
        f"{prefix}_d90": float(np.percentile(array, 90)),
    }


def measure_mask(mask: np.ndarray, settings: MeasureSettings, image: str = "") -> dict:
    """Every measurement of one (H, W) index mask: per-class image rows, particle rows, grain rows, profiles."""
    unit, scale = settings.unit, settings.scale
    fractions = area_fractions(mask, len(settings.classes))
    field_area = mask.size * scale**2
    rows, particles, grains, profiles = [], [], [], []
    for index, name in enumerate(settings.classes):
        kind = settings.kind(index)
        row = {"image": image, "class": name, "kind": kind, "area_fraction": float(fractions[index])}
        region = mask == index
        if kind == "particle":
            found = measure_particles(region, settings.min_size_px)
            sized = [p for p in found if settings.include_border or not p["touches_border"]]
            row.update(
                count=len(found),
                count_touching_border=sum(p["touches_border"] for p in found),
                **{f"number_density_per_{unit}2": len(found) / field_area},
                **_size_stats([p["ecd"] * scale for p in sized], f"ecd_{unit}"),
                **{f"nn_distance_{unit}_mean": float(np.nanmean([p["nn_distance"] for p in found]) * scale)
                   if len(found) > 1 else float("nan")},
            )  # fmt: skip
            for number, particle in enumerate(found, 1):
                scaled = _scaled(particle, settings, PARTICLE_LENGTHS, ("area",))
                particles.append({"image": image, "class": name, "particle": number, **scaled})
        elif kind == "layer":
            thickness = layer_thickness(region)
            row.update(
                orientation=thickness["orientation"],
                coverage=thickness["coverage"],
                **{f"thickness_{unit}_{stat}": thickness[stat] * scale for stat in ("mean", "std", "min", "max")},
            )
            profiles.append({"image": image, "class": name, "thickness": (thickness["profile"] * scale).tolist()})
        elif kind == "boundary":
            found = measure_grains(region, settings.min_size_px)
            inside = [g for g in found if not g["touches_border"]]
            row.update(
                grains=len(found),
                grains_cut_by_border=len(found) - len(inside),
                **_size_stats([g["ecd"] * scale for g in inside], f"grain_ecd_{unit}"),
            )
            if settings.pixel_size_um:
                area_mm2 = mask.size * (settings.pixel_size_um / 1000) ** 2
                row["astm_grain_size_number"] = astm_grain_size_number(
                    len(inside), len(found) - len(inside), area_mm2
                )
            for number, grain in enumerate(found, 1):
                scaled = _scaled(grain, settings, ("centroid_y", "centroid_x", "ecd"), ("area",))
                grains.append({"image": image, "class": name, "grain": number, **scaled})
        rows.append(row)
    return {"images": rows, "particles": particles, "grains": grains, "profiles": profiles}


MAX_UNNAMED_CLASSES = 32
"""Masks whose classes nobody named hold fewer classes than this; more values are a grey image's."""


def mask_classes(masks: list[np.ndarray], named: list[str] | None, where: str = "masks") -> list[str]:
    """The class names of index masks: ``named`` (arguments, ``predictions.json``) or ``class_0..N``; masks
    holding a class beyond the named ones are refused."""
    largest = max(int(mask[mask != IGNORE_INDEX].max(initial=0)) for mask in masks)
    if not named and largest >= MAX_UNNAMED_CLASSES:
        raise DataError(
            f"{where} hold values up to {largest}: images, not masks of class numbers (a mask of unnamed classes "
            f"has fewer than {MAX_UNNAMED_CLASSES}); measure the masks `csunet predict` writes, or name the classes"
        )
    classes = named or [f"class_{i}" for i in range(largest + 1)]
    if largest >= len(classes):
        raise DataError(f"{where} hold class {largest}, but only {len(classes)} classes are named: {classes}")
    return classes


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
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found += _folder_masks(item)
        elif item.is_file():
            found.append(item)
        else:
            raise DataError(f"{item}: no such file or folder")
    return found


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


def summarise(image_rows: list[dict], particles: list[dict], settings: MeasureSettings) -> dict:
    """Per class over all images: mean/std area fraction; pooled particle sizes; mean layer thickness; grain G."""
    unit = settings.unit
    summary = {}
    for index, name in enumerate(settings.classes):
        rows = [r for r in image_rows if r["class"] == name]
        fractions = [r["area_fraction"] for r in rows]
        entry = {"kind": settings.kind(index), "area_fraction_mean": float(np.mean(fractions)),
                 "area_fraction_std": float(np.std(fractions))}  # fmt: skip
        if entry["kind"] == "particle":
            sized = [
                p for p in particles if p["class"] == name and (settings.include_border or not p["touches_border"])
            ]
            entry.update(
                count=sum(r["count"] for r in rows),
                **_size_stats([p[f"ecd_{unit}"] for p in sized], f"ecd_{unit}"),
            )
        elif entry["kind"] == "layer":
            means = [r[f"thickness_{unit}_mean"] for r in rows if not math.isnan(r[f"thickness_{unit}_mean"])]
            entry[f"thickness_{unit}_mean"] = float(np.mean(means)) if means else float("nan")
        elif entry["kind"] == "boundary" and settings.pixel_size_um:
            entry["astm_grain_size_number_mean"] = float(np.mean([r["astm_grain_size_number"] for r in rows]))
        summary[name] = entry
    return summary


def size_summary(entry: dict, unit: str) -> str:
    """One line on a class's sizes from its :func:`summarise` entry, for tables on screen and in reports."""

    def number(value) -> str:
        return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3g}"

    if entry["kind"] == "particle":
        return f"ECD mean {number(entry[f'ecd_{unit}_mean'])}, d50 {number(entry[f'ecd_{unit}_d50'])} {unit}"
    if entry["kind"] == "layer":
        return f"thickness {number(entry[f'thickness_{unit}_mean'])} {unit}"
    if entry["kind"] == "boundary":
        grain_size = entry.get("astm_grain_size_number_mean")
        return "ASTM G needs a pixel size" if grain_size is None else f"ASTM G {number(grain_size)}"
    return ""


def measure(
    inputs: list[str | os.PathLike],
    out: str | os.PathLike = "measurements",
    pixel_size_um: float | None = None,
    min_size_px: int = 5,
    include_border: bool = False,
    kinds: dict[str, str] | None = None,
    classes: list[str] | None = None,
) -> dict:
    """Measure every mask in ``inputs``; write images.csv, particles.csv, grains.csv, thickness.csv and
    summary.json to ``out`` and return the summary.

    Class names and pixel size come from the predictions manifest when there is one; arguments override it.
    """
    paths = collect_masks(inputs)
    manifest = shared_manifest(inputs)
    named = {}
    for path in paths:
        name = path.name.removesuffix(path.suffix).removesuffix(MASK_SUFFIX)
        if name in named:
            raise DataError(f"two masks of one image name {name!r}: {named[name]} and {path}; measure them apart")
        named[name] = path
    masks = {path: read_index_mask(path) for path in paths}
    classes = mask_classes(list(masks.values()), classes or manifest.get("classes"))
    pixel = pixel_size_um if pixel_size_um is not None else manifest.get("pixel_size_um")
    settings = MeasureSettings(
        classes, pixel, min_size_px, include_border, dict(kinds or {}), manifest.get("background", 0)
    )
    by_name = {name: masks[path] for name, path in named.items()}
    return write_measurements(measure_masks(by_name, settings), settings, out)


def shared_manifest(inputs: list[str | os.PathLike]) -> dict:
    """The predictions manifest that the inputs' folders share (classes, background, pixel size); inputs from runs
    that disagree on them are refused by name, since one class table cannot name both."""
    found: dict[Path, dict] = {}
    for item in map(Path, inputs):
        folder = item if item.is_dir() else item.parent
        manifest = read_manifest(folder)
        if manifest:
            found.setdefault(folder, manifest)
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


def measure_masks(masks: dict[str, np.ndarray], settings: MeasureSettings) -> dict[str, list]:
    """The rows of every table (``images``, ``particles``, ``grains``, ``profiles``) for masks by image name."""
    collected: dict[str, list] = {"images": [], "particles": [], "grains": [], "profiles": []}
    for name, mask in masks.items():
        for key, rows in measure_mask(mask, settings, name).items():
            collected[key] += rows
    return collected


def write_measurements(collected: dict[str, list], settings: MeasureSettings, out: str | os.PathLike) -> dict:
    """Write the tables of :func:`measure_masks` as CSV files and ``summary.json`` into ``out``; return the
    summary."""
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
        "min_size_px": settings.min_size_px,
        "border_particles_in_sizes": settings.include_border,
        "per_class": summarise(collected["images"], collected["particles"], settings),
        "files": {name: str(out / name) for name, rows in files.items() if rows},
    }
    summary = _without_nan(summary)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _without_nan(value):
    """NaN (no particles, no layer) as null, so summary.json stays strict JSON."""
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nan(item) for item in value]
    return None if isinstance(value, float) and math.isnan(value) else value

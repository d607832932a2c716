"""Measuring masks, the building block under `csunet measure`, `evaluate`'s measurement agreement, the report and
napari: phase fractions, particle sizes, layer thickness and grain size, with intervals over the images.

Each class is measured as one of four kinds:

- ``matrix``: area fraction only (class 0 by default).
- ``particle``: connected regions (8-connectivity); count, number density, area, equivalent circle diameter, max/min
  Feret diameter (calipers on the convex hull of the outline, pixels as unit discs), aspect ratio (max/min Feret),
  centroid and nearest-neighbour spacing. Particles touching the image border are flagged and left out of size
  statistics unless asked (they are cut, so their sizes are wrong); they still count as neighbours. Regions below a
  minimum size are dropped as noise.
- ``layer``: a band across the image (e.g. EBC oxide): thickness across the layer at every column (or row,
  whichever way the layer runs; corrected for the layer's local tilt) and its mean, standard deviation, minimum and
  maximum.
- ``boundary``: grain-boundary pixels; grains are the 4-connected regions between them. Grain areas and diameters,
  and the ASTM E112 grain size number by the planimetric (Jeffries) method when the pixel size is known:
  N_A = (grains inside + grains cut by the border / 2) / area in mm^2 at 1x, G = 3.321928 log10(N_A) - 2.954.

Each kind is a :class:`Kind` in ``MEASURES``: how it is measured per image, pooled over images, said in one line
and compared with the truth. Lengths are in micrometres when a pixel size is known and in pixels otherwise; every
column name says which. Every number summarised over several images comes with a 95 % bootstrap interval over the
images.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.ndimage import binary_erosion
from scipy.spatial import ConvexHull, cKDTree
from scipy.spatial.distance import pdist
from scipy.stats import DegenerateDataWarning, bootstrap
from skimage.measure import label

from csunet.data.errors import DataError
from csunet.data.masks import IGNORE_INDEX
from csunet.errors import SettingsError, check_range

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


def border_labels(labels: np.ndarray) -> np.ndarray:
    """The labels of the regions that touch the image border (cut by it: their sizes are not their own)."""
    return np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))


def _regions(labels: np.ndarray, min_size_px: int) -> tuple[np.ndarray, list[dict]]:
    """The label numbers of the labelled regions of at least ``min_size_px`` pixels, in order, and a record for each:
    centroid, area, equivalent circle diameter (pixels) and whether the region touches the image border. Computed
    for all regions at once (a poor model's mask may hold tens of thousands)."""
    areas = np.bincount(labels.ravel())
    kept = np.flatnonzero(areas >= min_size_px)
    kept = kept[kept > 0]
    if kept.size == 0:
        return kept, []
    centroids = np.array(ndimage.center_of_mass(np.ones(labels.shape, np.uint8), labels, kept)).reshape(-1, 2)
    border = np.zeros(areas.size, bool)
    border[border_labels(labels)] = True
    records = [
        {"centroid_y": float(y), "centroid_x": float(x), "area": float(area),
         "ecd": float(np.sqrt(4 * area / np.pi)), "touches_border": bool(edge)}
        for (y, x), area, edge in zip(centroids, areas[kept], border[kept])
    ]  # fmt: skip
    return kept, records


def measure_particles(region_mask: np.ndarray, min_size_px: int, shapes: bool = True) -> list[dict]:
    """One record per connected particle (pixel units), with nearest-neighbour distance between centroids; Feret
    diameters and aspect ratio with ``shapes`` (the slow part, which agreement with the truth does not use)."""
    labels = label(region_mask, connectivity=2)
    kept, records = _regions(labels, min_size_px)
    if shapes:
        boxes = ndimage.find_objects(labels)
        for number, record in zip(kept, records):
            longest, shortest = feret_diameters(np.pad(labels[boxes[number - 1]] == number, 1))
            record |= {"feret_max": longest, "feret_min": shortest, "aspect_ratio": longest / shortest}
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
    return _regions(label(~boundary_mask, connectivity=1), min_size_px)[1]


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


@dataclass
class Records:
    """What measuring masks gives: a row per image and class, and a row per particle, grain and layer profile."""

    images: list[dict] = field(default_factory=list)
    particles: list[dict] = field(default_factory=list)
    grains: list[dict] = field(default_factory=list)
    profiles: list[dict] = field(default_factory=list)


class Kind:
    """How one kind of class is measured: in an image (``measure`` fills the class's row and adds records), over
    images (``pooled``), said in one line (``describe``), and compared with the truth (``agreement``). The matrix
    kind is this base: its area fraction, which every kind has, and nothing more."""

    agreement: tuple[tuple[str, str, str, str], ...] = ()
    """(measure, summary key, per-image key, error: absolute or relative) beyond the area fraction."""

    def measure(
        self, region: np.ndarray, settings: MeasureSettings, row: dict, found: Records, shapes: bool
    ) -> None:
        """Measure the class's pixels ``region`` (a boolean mask of the whole image)."""

    def pooled(self, records: list[_ImageClass], settings: MeasureSettings) -> dict[str, float]:
        return {}

    def describe(self, entry: dict, unit: str) -> str:
        return ""


class Particles(Kind):
    agreement = (("count", "count", "count", "relative"),
                 ("ecd_mean", "ecd_{unit}_mean", "ecd_{unit}_mean", "relative"),
                 ("ecd_d50", "ecd_{unit}_d50", "ecd_{unit}_d50", "relative"))  # fmt: skip

    def measure(self, region, settings, row, found, shapes) -> None:
        unit, scale = settings.unit, settings.scale
        particles = measure_particles(region, settings.min_size_px, shapes)
        sized = [p for p in particles if settings.include_border or not p["touches_border"]]
        row.update(
            count=len(particles),
            count_touching_border=sum(p["touches_border"] for p in particles),
            **{f"number_density_per_{unit}2": len(particles) / (region.size * scale**2)},
            **_size_stats([p["ecd"] * scale for p in sized], f"ecd_{unit}"),
            **{f"nn_distance_{unit}_mean": float(np.nanmean([p["nn_distance"] for p in particles]) * scale)
               if len(particles) > 1 else float("nan")},
        )  # fmt: skip
        for number, particle in enumerate(particles, 1):
            scaled = _scaled(particle, settings, PARTICLE_LENGTHS, ("area",))
            found.particles.append({"image": row["image"], "class": row["class"], "particle": number, **scaled})

    def pooled(self, records, settings) -> dict[str, float]:
        return {"count": float(sum(r.count for r in records)),
                **_size_stats(list(np.concatenate([r.sizes for r in records])), f"ecd_{settings.unit}")}  # fmt: skip

    def describe(self, entry, unit) -> str:
        return f"ECD mean {with_interval(entry, f'ecd_{unit}_mean')}, d50 {with_interval(entry, f'ecd_{unit}_d50')} {unit}"


class Layer(Kind):
    agreement = (("thickness_mean", "thickness_{unit}_mean", "thickness_{unit}_mean", "relative"),)

    def measure(self, region, settings, row, found, shapes) -> None:
        unit, scale = settings.unit, settings.scale
        thickness = layer_thickness(region)
        row.update(
            orientation=thickness["orientation"],
            coverage=thickness["coverage"],
            **{f"thickness_{unit}_{stat}": thickness[stat] * scale for stat in ("mean", "std", "min", "max")},
        )
        found.profiles.append(
            {"image": row["image"], "class": row["class"], "thickness": (thickness["profile"] * scale).tolist()}
        )

    def pooled(self, records, settings) -> dict[str, float]:
        thickness = [r.thickness for r in records if not math.isnan(r.thickness)]
        return {f"thickness_{settings.unit}_mean": float(np.mean(thickness)) if thickness else float("nan")}

    def describe(self, entry, unit) -> str:
        return f"thickness {with_interval(entry, f'thickness_{unit}_mean')} {unit}"


class Boundaries(Kind):
    agreement = (("grains", "grains", "grains", "relative"),
                 ("astm_g", "astm_grain_size_number_mean", "astm_grain_size_number", "absolute"))  # fmt: skip

    def measure(self, region, settings, row, found, shapes) -> None:
        unit, scale = settings.unit, settings.scale
        grains = measure_grains(region, settings.min_size_px)
        inside = [g for g in grains if not g["touches_border"]]
        row.update(
            grains=len(grains),
            grains_cut_by_border=len(grains) - len(inside),
            **_size_stats([g["ecd"] * scale for g in inside], f"grain_ecd_{unit}"),
        )
        if settings.pixel_size_um:
            area_mm2 = region.size * (settings.pixel_size_um / 1000) ** 2
            row["astm_grain_size_number"] = astm_grain_size_number(
                len(inside), len(grains) - len(inside), area_mm2
            )
        for number, grain in enumerate(grains, 1):
            scaled = _scaled(grain, settings, ("centroid_y", "centroid_x", "ecd"), ("area",))
            found.grains.append({"image": row["image"], "class": row["class"], "grain": number, **scaled})

    def pooled(self, records, settings) -> dict[str, float]:
        numbers = {"grains": float(sum(r.grains for r in records))}
        if settings.pixel_size_um:
            numbers["astm_grain_size_number_mean"] = float(np.mean([r.grain_size for r in records]))
        return numbers

    def describe(self, entry, unit) -> str:
        if "astm_grain_size_number_mean" not in entry:
            return f"{with_interval(entry, 'grains')} grains; ASTM G needs a pixel size"
        return f"{with_interval(entry, 'grains')} grains, ASTM G {with_interval(entry, 'astm_grain_size_number_mean')}"


MEASURES: dict[str, Kind] = {"matrix": Kind(), "particle": Particles(), "layer": Layer(), "boundary": Boundaries()}
"""The kinds of class and how each is measured; a new kind is one more entry."""
KINDS = tuple(MEASURES)
AREA_AGREEMENT = (("area_fraction", "area_fraction_mean", "area_fraction", "absolute"),)


def measure_mask(mask: np.ndarray, settings: MeasureSettings, image: str = "", shapes: bool = True) -> dict:
    """Every measurement of one (H, W) index mask: per-class image rows, particle rows, grain rows, profiles."""
    fractions = area_fractions(mask, len(settings.classes))
    found = Records()
    for index, name in enumerate(settings.classes):
        kind = settings.kind(index)
        row = {"image": image, "class": name, "kind": kind, "area_fraction": float(fractions[index])}
        MEASURES[kind].measure(mask == index, settings, row, found, shapes)
        found.images.append(row)
    return dict(vars(found))  # the lists themselves: asdict would deep-copy every particle row


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


def measure_masks(masks: dict[str, np.ndarray], settings: MeasureSettings, shapes: bool = True) -> dict[str, list]:
    """The rows of every table (``images``, ``particles``, ``grains``, ``profiles``) for masks by image name."""
    collected: dict[str, list] = {"images": [], "particles": [], "grains": [], "profiles": []}
    for name, mask in masks.items():
        for key, rows in measure_mask(mask, settings, name, shapes).items():
            collected[key] += rows
    return collected


# ---------------------------------------------------------------- over images, with intervals

CONFIDENCE = 0.95
RESAMPLES = 1999
"""Bootstrap resamples of the images: enough that the interval's ends move by well under its width between seeds."""


@dataclass
class _ImageClass:
    """What one image says about one class, the unit the summary pools and the bootstrap resamples."""

    fraction: float
    count: int = 0
    sizes: np.ndarray = field(default_factory=lambda: np.empty(0))
    thickness: float = float("nan")
    grains: int = 0
    grain_size: float = float("nan")


def _image_classes(image_rows: list[dict], particles: list[dict], settings: MeasureSettings) -> dict:
    """image -> class -> :class:`_ImageClass`, from the rows of :func:`measure_mask`."""
    unit = settings.unit
    sizes: dict[tuple[str, str], list[float]] = {}
    for p in particles:
        if settings.include_border or not p["touches_border"]:
            sizes.setdefault((p["image"], p["class"]), []).append(p[f"ecd_{unit}"])
    found: dict[str, dict[str, _ImageClass]] = {}
    for row in image_rows:
        found.setdefault(row["image"], {})[row["class"]] = _ImageClass(
            fraction=row["area_fraction"],
            count=row.get("count", 0),
            sizes=np.asarray(sizes.get((row["image"], row["class"]), [])),
            thickness=row.get(f"thickness_{unit}_mean", float("nan")),
            grains=row.get("grains", 0),
            grain_size=row.get("astm_grain_size_number", float("nan")),
        )
    return found


def _pooled(kind: str, records: list[_ImageClass], settings: MeasureSettings) -> dict[str, float]:
    """A class's summary numbers over ``records`` (one per image, repeats allowed)."""
    fractions = [r.fraction for r in records]
    numbers = {"area_fraction_mean": float(np.mean(fractions)), "area_fraction_std": float(np.std(fractions))}
    return numbers | MEASURES[kind].pooled(records, settings)


def interval_note(images: int) -> str:
    """What the intervals in a summary are, or why there are none."""
    if images < 2:
        return "one image: an interval over images needs two or more, so none is given"
    return (
        f"± is half the width of a {CONFIDENCE:.0%} bootstrap interval over the {images} images (images resampled "
        f"with replacement {RESAMPLES} times, percentile method; none where some resamples hold none of a class)"
    )


def summarise(
    image_rows: list[dict], particles: list[dict], settings: MeasureSettings, intervals: bool = True
) -> dict:
    """Per class over all images: mean and spread of the area fraction, particle count and pooled sizes, mean layer
    thickness, grain count and G; with ``intervals``, each number's 95 % bootstrap interval over the images under
    ``ci95`` (none for a single image)."""
    by_image = _image_classes(image_rows, particles, settings)
    images = list(by_image)
    kinds = {name: settings.kind(index) for index, name in enumerate(settings.classes)}

    def numbers(chosen) -> dict[str, dict[str, float]]:
        return {name: _pooled(kind, [by_image[images[i]][name] for i in chosen], settings)
                for name, kind in kinds.items()}  # fmt: skip

    summary = {name: {"kind": kinds[name], **values} for name, values in numbers(range(len(images))).items()}
    if intervals and len(images) > 1:
        keys = [(name, key) for name, entry in summary.items() for key in entry if key != "kind"]

        def vector(chosen: np.ndarray) -> np.ndarray:
            values = numbers(chosen.astype(int))
            return np.array([values[name][key] for name, key in keys])

        with warnings.catch_warnings():  # every resample alike (one particle, say): the interval is a point
            warnings.simplefilter("ignore", DegenerateDataWarning)
            found = bootstrap((np.arange(len(images)),), vector, vectorized=False, n_resamples=RESAMPLES,
                              confidence_level=CONFIDENCE, method="percentile", rng=0).confidence_interval  # fmt: skip
        for (name, key), low, high in zip(keys, np.atleast_1d(found.low), np.atleast_1d(found.high)):
            bounds = None if math.isnan(low) or math.isnan(high) else [float(low), float(high)]
            summary[name].setdefault("ci95", {})[key] = bounds
    return summary


def with_interval(entry: dict, key: str, digits: int = 3) -> str:
    """``0.497 ± 0.012``: a summary number and half its interval's width; ``-`` when there is no number."""
    value = entry.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    bounds = entry.get("ci95", {}).get(key)
    text = f"{value:.{digits}g}"
    return text if not bounds else f"{text} ± {(bounds[1] - bounds[0]) / 2:.2g}"


def size_summary(entry: dict, unit: str) -> str:
    """One line on a class's sizes from its :func:`summarise` entry, for tables on screen and in reports."""
    return MEASURES[entry["kind"]].describe(entry, unit)


def without_nan(value):
    """NaN (no particles, no layer) as null, so JSON stays strict."""
    if isinstance(value, dict):
        return {key: without_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nan(item) for item in value]
    return None if isinstance(value, float) and math.isnan(value) else value


# ---------------------------------------------------------------- agreement with the truth


def _measures(kind: str) -> tuple[tuple[str, str, str, str], ...]:
    """(measure, summary key, per-image key, error) compared between truth and prediction: the area fraction for
    every kind, then the kind's own."""
    return AREA_AGREEMENT + MEASURES[kind].agreement


def _error(truth: float | None, predicted: float | None, how: str) -> float:
    if truth is None or predicted is None or math.isnan(truth) or math.isnan(predicted):
        return float("nan")
    if how == "absolute":
        return predicted - truth
    return (predicted - truth) / truth if truth else float("nan")


def _compare(truth: dict, predicted: dict, kind: str, unit: str, per_image: bool) -> dict:
    result = {}
    for measure_name, summary_key, image_key, how in _measures(kind):
        key = (image_key if per_image else summary_key).format(unit=unit)
        if key not in truth and key not in predicted:
            continue
        t, p = truth.get(key, float("nan")), predicted.get(key, float("nan"))
        result[measure_name] = {"truth": t, "predicted": p, f"{how}_error": _error(t, p, how)}
    return result


def agreement(
    truth: dict[str, np.ndarray],
    predicted: dict[str, np.ndarray],
    settings: MeasureSettings,
    truth_measured: dict[str, list] | None = None,
) -> dict:
    """How far the measurements of ``predicted`` masks are from those of the ``truth`` masks (same image names),
    measured by the same code with the same settings: per class over the split and per image, and the particle
    sizes of both for histograms. ``truth_measured``: the truth's :func:`measure_masks` rows, when already made."""
    measured = {"truth": truth_measured or measure_masks(truth, settings, shapes=False),
                "predicted": measure_masks(predicted, settings, shapes=False)}  # fmt: skip
    pooled = {side: summarise(rows["images"], rows["particles"], settings, intervals=False)
              for side, rows in measured.items()}  # fmt: skip
    unit = settings.unit
    per_class = {name: {"kind": pooled["truth"][name]["kind"],
                        **_compare(pooled["truth"][name], pooled["predicted"][name], pooled["truth"][name]["kind"],
                                   unit, per_image=False)}
                 for name in settings.classes}  # fmt: skip
    rows = {side: {(r["image"], r["class"]): r for r in found["images"]} for side, found in measured.items()}
    per_image = [
        {"image": image, "class": name,
         **_compare(rows["truth"][image, name], rows["predicted"][image, name], per_class[name]["kind"], unit, True)}
        for image in truth for name in settings.classes
    ]  # fmt: skip
    sizes = {
        name: {side: [p[f"ecd_{unit}"] for p in found["particles"] if p["class"] == name
                      and (settings.include_border or not p["touches_border"])] for side, found in measured.items()}
        for name, entry in per_class.items() if entry["kind"] == "particle"
    }  # fmt: skip
    return {"unit": unit, "min_size_px": settings.min_size_px, "images": len(truth), "per_class": per_class,
            "per_image": per_image, "particle_sizes": sizes}  # fmt: skip


def agreement_score(result: dict) -> float:
    """One number for how far the split's measurements are off (0: exact): the mean size of the relative errors,
    area fractions counted relative to the truth's share (at least 1 %). Used to decide clean-up rules."""
    errors = []
    for entry in result["per_class"].values():
        for name, values in entry.items():
            if name == "kind":
                continue
            if "relative_error" in values:
                errors.append(abs(values["relative_error"]))
            elif name == "area_fraction":
                errors.append(abs(values["absolute_error"]) / max(values["truth"], 0.01))
            else:
                errors.append(
                    2 ** abs(values["absolute_error"]) - 1
                )  # ASTM G: one number is a factor of two in N_A
    finite = [e for e in errors if not math.isnan(e)]
    return float(np.mean(finite)) if finite else 0.0


MEASURE_NAMES = {"area_fraction": "area fraction", "count": "count", "ecd_mean": "ECD mean", "ecd_d50": "ECD d50",
                 "thickness_mean": "thickness mean", "grains": "grains", "astm_g": "ASTM G"}  # fmt: skip


def agreement_rows(result: dict) -> list[list[str]]:
    """[class, measure, truth, predicted, error] per compared number of an :func:`agreement`, as text for tables
    on screen and in reports (relative errors in %, absolute ones as differences)."""

    def number(value) -> str:
        return "-" if value is None or math.isnan(value) else f"{value:.4g}"

    rows = []
    for name, entry in result["per_class"].items():
        for measure_name, values in entry.items():
            if measure_name == "kind":
                continue
            if "relative_error" in values:
                error = values["relative_error"]
                text = "-" if error is None or math.isnan(error) else f"{error:+.1%}"
            else:
                error = values["absolute_error"]
                text = "-" if error is None or math.isnan(error) else f"{error:+.4f}"
            label = MEASURE_NAMES[measure_name] + (
                f" ({result['unit']})" if measure_name.startswith("ecd") else ""
            )
            rows.append([name, label, number(values["truth"]), number(values["predicted"]), text])
    return rows

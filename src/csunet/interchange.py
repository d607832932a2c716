"""Masks in the formats other tools open: ImageJ / Fiji ROI sets, GeoJSON (QuPath, GIS tools) and OME-Zarr (large
images with their labels, for napari and any NGFF viewer).

Outlines follow the pixel edges (a pixel at row r, column c is the square [c, c+1] x [r, r+1], the convention of
ImageJ, QuPath and GeoJSON-in-pixels alike), so a polygon's area is its region's pixel count and filling it again
gives back exactly its pixels. Regions are the connected regions (8-connectivity) of each class but the background,
numbered as ``csunet measure`` numbers particles (``particles.csv``), so a polygon and its measurements share a
number; regions under ``min_size_px`` pixels are left out, as measure leaves them out.

- ROI sets (``NAME_rois.zip``, roifile): one polygon ROI per region, named ``CLASS-0001``; ImageJ polygons have no
  holes, so a region's holes are left out of its ROI (its outline is right; its area then counts the holes).
- GeoJSON (``NAME.geojson``): a FeatureCollection, one Polygon or MultiPolygon per region with its holes, the class
  in ``properties.classification`` as QuPath reads it, and the region's measurements as properties.
- OME-Zarr (``NAME.ome.zarr``, ome-zarr): the image and the mask as its ``labels/segmentation`` (class k as label
  k + 1, 0 unlabelled, as in napari), with the pixel size as the scale and a pyramid for large images.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from csunet.data.masks import IGNORE_INDEX
from csunet.errors import SettingsError
from csunet.utils import atomic_folder, atomic_write_bytes, atomic_write_text

EXPORTS = ("roi", "geojson", "ome-zarr")
SEGMENTATION_LABELS = "segmentation"
"""Name of the labels group in an OME-Zarr we write."""
PYRAMID_SMALLEST = 256
"""An OME-Zarr pyramid halves the image until its longer side would be under this."""


def check_exports(exports: list[str] | None) -> list[str]:
    """The export formats asked for, each one known (or a SettingsError naming the choices)."""
    exports = list(dict.fromkeys(exports or []))
    unknown = [name for name in exports if name not in EXPORTS]
    if unknown:
        raise SettingsError(f"unknown export {', '.join(map(repr, unknown))}; choose from {', '.join(EXPORTS)}")
    return exports


def region_outlines(mask: np.ndarray, index: int, min_size_px: int = 1) -> Iterator[tuple[int, object]]:
    """(region number, shapely geometry along its pixel edges) for each region of class ``index``."""
    import shapely
    from scipy import ndimage
    from skimage.measure import label

    labels = label(mask == index, connectivity=2)
    areas = np.bincount(labels.ravel())
    kept = [k for k in np.flatnonzero(areas >= min_size_px) if k > 0]
    boxes = ndimage.find_objects(labels)
    for number, region in enumerate(kept, 1):
        rows, cols = boxes[region - 1]
        inside = np.pad(labels[rows, cols] == region, ((0, 0), (1, 1)))
        steps = np.diff(inside.astype(np.int8), axis=1)
        starts_r, starts_c = np.nonzero(steps == 1)  # a run of the region's pixels in one row starts ...
        _, ends_c = np.nonzero(steps == -1)  # ... and ends, in the same order
        top, left = rows.start, cols.start
        runs = shapely.box(left + starts_c, top + starts_r, left + ends_c, top + starts_r + 1)
        yield number, shapely.union_all(runs).normalize()


def outlines_by_class(
    mask: np.ndarray, classes: list[str], background: int | None, min_size_px: int = 1
) -> list[tuple[str, int, object]]:
    """(class name, region number, geometry) of every region of every class but the background."""
    return [
        (name, number, geometry)
        for index, name in enumerate(classes)
        if index != background
        for number, geometry in region_outlines(mask, index, min_size_px)
    ]


def _polygons(geometry) -> list:
    return list(geometry.geoms) if geometry.geom_type == "MultiPolygon" else [geometry]


def roi_set_bytes(outlines: list[tuple[str, int, object]]) -> bytes:
    """An ImageJ ROI set (a zip of .roi files): one polygon per region (per part, for regions in several parts)."""
    from roifile import ImagejRoi

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, number, geometry in outlines:
            parts = _polygons(geometry)
            for part_number, polygon in enumerate(parts, 1):
                roi_name = f"{name}-{number:04d}" + (f"-{part_number}" if len(parts) > 1 else "")
                points = np.asarray(polygon.exterior.coords)[:-1]  # ImageJ closes polygons itself
                roi = ImagejRoi.frompoints(points, name=roi_name)
                archive.writestr(f"{roi_name}.roi", roi.tobytes())
    return buffer.getvalue()


def geojson_text(
    outlines: list[tuple[str, int, object]],
    colours: dict[str, list[int]],
    measurements: dict[tuple[str, int], dict] | None = None,
) -> str:
    """A GeoJSON FeatureCollection in pixel coordinates: class, region number, area and ``measurements`` (keyed by
    class and region number, e.g. the rows of particles.csv) as each feature's properties."""
    from shapely.geometry import mapping

    features = []
    for name, number, geometry in outlines:
        properties = {
            "objectType": "detection",
            "classification": {"name": name, "color": list(colours.get(name, [255, 255, 255]))},
            "class": name,
            "region": number,
            "area_px": int(round(geometry.area)),
        }
        for key, value in (measurements or {}).get((name, number), {}).items():
            if key not in ("image", "class", "particle", "grain"):
                properties[key] = None if isinstance(value, float) and value != value else value
        features.append({"type": "Feature", "geometry": mapping(geometry), "properties": properties})
    return json.dumps({"type": "FeatureCollection", "features": features}) + "\n"


def write_vector_exports(
    folder: str | os.PathLike,
    stem: str,
    mask: np.ndarray,
    classes: list[str],
    colours: list[list[int]],
    background: int | None,
    exports: list[str],
    min_size_px: int = 1,
    measurements: dict[tuple[str, int], dict] | None = None,
) -> dict[str, str]:
    """Write the ROI set and / or GeoJSON of ``mask`` into ``folder``; {"roi": path, "geojson": path} of those
    written."""
    folder = Path(folder)
    written: dict[str, str] = {}
    if not {"roi", "geojson"} & set(exports):
        return written
    outlines = outlines_by_class(mask, classes, background, min_size_px)
    if "roi" in exports:
        path = folder / f"{stem}_rois.zip"
        atomic_write_bytes(path, roi_set_bytes(outlines))
        written["roi"] = str(path)
    if "geojson" in exports:
        path = folder / f"{stem}.geojson"
        atomic_write_text(path, geojson_text(outlines, dict(zip(classes, colours)), measurements))
        written["geojson"] = str(path)
    return written


def pyramid_levels(height: int, width: int) -> int:
    """How many times to halve an image for its OME-Zarr pyramid (0 for a small one)."""
    levels, longest = 0, max(height, width)
    while longest // 2 ** (levels + 1) >= PYRAMID_SMALLEST:
        levels += 1
    return levels


def write_ome_zarr(
    path: str | os.PathLike,
    image: np.ndarray,
    mask: np.ndarray,
    classes: list[str],
    colours: list[list[int]],
    pixel_size_um: float | None,
) -> Path:
    """The image (grey (H, W) or colour (H, W, C)) and its class mask as one OME-Zarr, written to a temporary
    folder beside ``path`` and moved into place, so that a crash never leaves half of one."""
    import zarr
    from ome_zarr.io import parse_url
    from ome_zarr.writer import write_image, write_labels

    path = Path(path)
    levels = pyramid_levels(*mask.shape)
    factors = [2 ** (level + 1) for level in range(levels)]
    spatial = {"y": pixel_size_um or 1.0, "x": pixel_size_um or 1.0}
    units = {"y": "micrometer", "x": "micrometer"} if pixel_size_um else None
    with atomic_folder(path) as temporary:
        root = zarr.group(store=parse_url(temporary, mode="w").store)
        if image.ndim == 3:
            data, axes, scale = np.moveaxis(image, -1, 0), "cyx", {"c": 1.0, **spatial}
            units = None if units is None else {"c": None, **units}
        else:
            data, axes, scale = image, "yx", spatial
        common = {"axes": axes, "scale": scale, "scale_factors": factors}
        if units:
            common["axes_units"] = {k: v for k, v in units.items() if v}
        write_image(data, root, name="image", **common)
        labels = (mask.astype(np.int64) + 1).astype(np.uint8 if len(classes) < 255 else np.uint16)
        labels[mask == IGNORE_INDEX] = 0
        metadata = {
            "colors": [
                {"label-value": k + 1, "rgba": [*map(int, colour), 255]} for k, colour in enumerate(colours)
            ],
            "properties": [{"label-value": k + 1, "class": name} for k, name in enumerate(classes)],
        }
        label_common = {"axes": "yx", "scale": spatial, "scale_factors": factors}
        if units:
            label_common["axes_units"] = units
        write_labels(labels, root, name=SEGMENTATION_LABELS, label_metadata=metadata, scaler=None, **label_common)
    return path


def read_ome_zarr(path: str | os.PathLike) -> dict:
    """What :func:`write_ome_zarr` wrote: {"image", "mask" (class indices, 255 unlabelled), "classes", "colours",
    "pixel_size_um"} at full resolution."""
    import zarr

    root = zarr.open_group(str(path), mode="r")
    attributes = root.attrs.asdict()
    multiscales = attributes.get("ome", attributes).get("multiscales")
    if not multiscales:
        from csunet.data.errors import DataError

        raise DataError(f"{path}: not an OME-Zarr image (no multiscales metadata)")
    first = multiscales[0]["datasets"][0]
    image = np.asarray(root[first["path"]])
    if image.ndim == 3:
        image = np.moveaxis(image, 0, -1)
    scale = next(t["scale"] for t in first["coordinateTransformations"] if t["type"] == "scale")
    units = {axis.get("name"): axis.get("unit") for axis in multiscales[0]["axes"]}
    group = root["labels"][SEGMENTATION_LABELS]
    label_attributes = group.attrs.asdict()
    label_attributes = label_attributes.get("ome", label_attributes)
    label_path = label_attributes["multiscales"][0]["datasets"][0]["path"]
    labels = np.asarray(group[label_path]).astype(np.int64)
    described = label_attributes["image-label"]
    classes = [p["class"] for p in sorted(described["properties"], key=lambda p: p["label-value"])]
    colours = [c["rgba"][:3] for c in sorted(described["colors"], key=lambda c: c["label-value"])]
    mask = np.where(labels == 0, IGNORE_INDEX, labels - 1).astype(np.uint8)
    return {"image": image, "mask": mask, "classes": classes, "colours": colours,
            "pixel_size_um": float(scale[-1]) if units.get("x") == "micrometer" else None}  # fmt: skip

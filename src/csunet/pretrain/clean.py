"""Remove what is not microstructure from micrographs: SEM information bands and boxed scale bars.

An information band is a run of rows at the bottom (or top) that are mostly saturated (black or white: the band's
background and its text). A scale-bar box is a solid saturated rectangle (a blob of one extreme value that fills
its bounding box) holding the bar and its label. Both are removed by cropping: the band's rows, and for a box the
strip of rows or columns beyond it that costs the fewest pixels. Detection is reported per image; where it fails,
``crop`` takes a manual crop (pixels off top, bottom, left, right) instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from skimage.measure import label, regionprops

from csunet.data.io import grey as channel_mean
from csunet.errors import SettingsError
from csunet.pretrain.collection import list_collection, output_path, read_image, write_png
from csunet.pretrain.manifest import write_manifest

SATURATED = 0.04
"""Pixels within this of 0 or 1 count as saturated (band background, text, box fill)."""


@dataclass
class CleanReport:
    source: str
    size: tuple[int, int]
    info_band: tuple[int, int] | None = None  # rows [start, stop)
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # (top, left, bottom, right)
    crop: tuple[int, int, int, int] = (0, 0, 0, 0)  # (top, bottom, left, right) pixels removed

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "size": list(self.size),
            "info_band_rows": list(self.info_band) if self.info_band else None,
            "scale_bar_boxes": [list(b) for b in self.boxes],
            "removed": dict(zip(("top", "bottom", "left", "right"), self.crop)),
        }


def find_info_band(
    image: np.ndarray, min_fraction: float = 0.02, max_fraction: float = 0.35
) -> tuple[int, int] | None:
    """Rows [start, stop) of an information band at the bottom or top of the image, or None."""
    grey = channel_mean(image)
    height = grey.shape[0]
    saturated = ((grey <= SATURATED) | (grey >= 1 - SATURATED)).mean(axis=1) >= 0.6
    for rows in (range(height - 1, -1, -1), range(height)):  # bottom first, then top
        count = 0
        for row in rows:
            if not saturated[row]:
                break
            count += 1
        if min_fraction * height <= count <= max_fraction * height:
            return (height - count, height) if rows.start == height - 1 else (0, count)
    return None


def find_scale_bar_boxes(
    image: np.ndarray, min_area: float = 0.001, max_area: float = 0.2
) -> list[tuple[int, int, int, int]]:
    """Solid saturated rectangles (top, left, bottom, right) covering between min and max of the image area."""
    grey = channel_mean(image)
    area = grey.size
    boxes = []
    for mask in (grey >= 1 - SATURATED, grey <= SATURATED):
        for region in regionprops(label(mask, connectivity=2)):
            top, left, bottom, right = region.bbox
            box_area = (bottom - top) * (right - left)
            solid = region.area / box_area >= 0.8 and min(bottom - top, right - left) >= 8
            if solid and min_area * area <= box_area <= max_area * area:
                boxes.append((int(top), int(left), int(bottom), int(right)))
    return boxes


def _cheapest_crop(shape: tuple[int, int], box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) cut that removes ``box`` while keeping the largest area."""
    height, width = shape
    top, left, bottom, right = box
    options = [(bottom, 0, 0, 0), (0, height - top, 0, 0), (0, 0, right, 0), (0, 0, 0, width - left)]
    return max(options, key=lambda c: (height - c[0] - c[1]) * (width - c[2] - c[3]))


def clean_image(image: np.ndarray, source: str = "", crop: tuple[int, int, int, int] | None = None):
    """(cleaned image, report). With ``crop`` the detection is skipped and exactly that is cut off."""
    height, width = image.shape[:2]
    report = CleanReport(source, (width, height))
    if crop is None:
        cut = [0, 0, 0, 0]
        report.info_band = find_info_band(image)
        if report.info_band:
            start, stop = report.info_band
            cut[0 if start == 0 else 1] = stop - start
        inner = image[cut[0] : height - cut[1]]
        report.boxes = [(t + cut[0], left, b + cut[0], r) for t, left, b, r in find_scale_bar_boxes(inner)]
        for top, left, bottom, right in report.boxes:
            box_cut = _cheapest_crop((height, width), (top, left, bottom, right))
            cut = [max(a, b) for a, b in zip(cut, box_cut)]
        crop = tuple(cut)
    top, bottom, left, right = crop
    if top + bottom >= height or left + right >= width:
        raise SettingsError(
            f"{source}: removing {crop} (top, bottom, left, right) would leave nothing of {width}x{height}"
        )
    report.crop = tuple(int(c) for c in crop)
    return image[top : height - bottom, left : width - right], report


def clean_folder(source: str | Path, out: str | Path, crop: tuple[int, int, int, int] | None = None) -> list[dict]:
    """Clean every image of a collection into ``out`` (same class layout, PNG) and return the reports."""
    out = Path(out)
    reports, rows = [], []
    for path, class_name in list_collection(source):
        cleaned, report = clean_image(read_image(path), str(path), crop)
        target = output_path(out, class_name, path.stem + ".png")
        write_png(target, cleaned)
        reports.append(report.to_dict())
        rows.append({"file": str(target.relative_to(out)), "source": str(path), "class": class_name,
                     "top": report.crop[0], "left": report.crop[2], "height": cleaned.shape[0],
                     "width": cleaned.shape[1], "step": "clean"})  # fmt: skip
    write_manifest(out, rows)
    return reports

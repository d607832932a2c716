"""The pixel size a microscope wrote into its TIFF file, so that nobody types it in.

Read, in this order, from what tifffile exposes: FEI/Thermo Fisher SEM and FIB headers (``[Scan] PixelWidth``, in
metres), Zeiss SEM (``AP_PIXEL_SIZE`` / ``AP_IMAGE_PIXEL_SIZE``, with its unit), OME-TIFF (``PhysicalSizeX`` and its
unit), ImageJ (the resolution tags in the unit ImageJ names: micron, nm, mm, ...), and plain TIFF resolution tags
in centimetres or millimetres (what many optical microscopes' software writes). Resolution in inches is left
alone: it is almost always a print resolution (72 or 300 dpi), not a pixel size. Every value comes with where it
was found, which the commands print.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

UNIT_IN_UM = {"m": 1e6, "cm": 1e4, "mm": 1e3, "um": 1.0, "µm": 1.0, "μm": 1.0, "micron": 1.0, "microns": 1.0,
              "micrometer": 1.0, "micrometre": 1.0, "nm": 1e-3, "nanometer": 1e-3, "nanometre": 1e-3,
              "pm": 1e-6, "a": 1e-4, "å": 1e-4, "angstrom": 1e-4}  # fmt: skip
MISMATCH = 0.2
"""An image's pixel size this far (relative) from the model's training pixel size draws a warning."""


@dataclass(frozen=True)
class PixelSize:
    um: float
    source: str
    """Where it was found, e.g. "FEI/Thermo metadata ([Scan] PixelWidth)"."""

    def describe(self) -> str:
        return f"{self.um:.4g} µm per pixel (from {self.source})"


def _in_um(value, unit: str) -> float | None:
    factor = UNIT_IN_UM.get(str(unit).strip().lower().replace("\\u00b5", "µ"))
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if factor is None or not number > 0 or number != number:
        return None
    return number * factor


def _fei(tif) -> PixelSize | None:
    metadata = tif.fei_metadata
    if not metadata:
        return None
    for section, key in (("Scan", "PixelWidth"), ("EScan", "PixelWidth"), ("Image", "PixelWidth")):
        size = _in_um(metadata.get(section, {}).get(key), "m")
        if size:
            return PixelSize(size, f"FEI/Thermo metadata ([{section}] {key})")
    return None


def _zeiss(tif) -> PixelSize | None:
    metadata = tif.sem_metadata
    if not metadata:
        return None
    for key in ("ap_image_pixel_size", "ap_pixel_size"):
        entry = metadata.get(key)
        if isinstance(entry, tuple) and len(entry) >= 3:
            size = _in_um(entry[1], entry[2])
            if size:
                return PixelSize(size, f"Zeiss SEM metadata ({key.upper()})")
    return None


def _ome(tif) -> PixelSize | None:
    xml = tif.ome_metadata
    if not xml:
        return None
    found = re.search(r'PhysicalSizeX="([^"]+)"', xml)
    if not found:
        return None
    unit = re.search(r'PhysicalSizeXUnit="([^"]+)"', xml)
    size = _in_um(found.group(1), unit.group(1) if unit else "µm")  # OME's default unit is the micrometre
    return PixelSize(size, "OME-TIFF metadata (PhysicalSizeX)") if size else None


def _resolution(page) -> float | None:
    """Pixels per resolution unit along x, from the XResolution tag."""
    tag = page.tags.get("XResolution")
    if tag is None:
        return None
    numerator, denominator = tag.value if isinstance(tag.value, tuple) else (tag.value, 1)
    return numerator / denominator if numerator and denominator else None


def _imagej(tif) -> PixelSize | None:
    metadata = tif.imagej_metadata
    if not metadata or "unit" not in metadata:
        return None
    per_unit = _resolution(tif.pages.first)
    size = _in_um(1 / per_unit, metadata["unit"]) if per_unit else None
    return PixelSize(size, f"ImageJ metadata (resolution, unit {metadata['unit']})") if size else None


def _tiff_resolution(tif) -> PixelSize | None:
    page = tif.pages.first
    unit = page.tags.get("ResolutionUnit")
    names = {3: "cm", 4: "mm", 5: "um"}  # TIFF's centimetre; millimetre and micrometre as tifffile writes them
    if unit is None or int(unit.value) not in names:
        return None
    per_unit = _resolution(page)
    size = _in_um(1 / per_unit, names[int(unit.value)]) if per_unit else None
    return PixelSize(size, f"TIFF resolution tags (per {names[int(unit.value)]})") if size else None


READERS = (_fei, _zeiss, _ome, _imagej, _tiff_resolution)


def pixel_size_from_file(path: str | os.PathLike) -> PixelSize | None:
    """The pixel size recorded in the image file at ``path``, or None (not a TIFF, or nothing recorded)."""
    if Path(path).suffix.lower() not in (".tif", ".tiff"):
        return None
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            for reader in READERS:
                found = reader(tif)
                if found is not None:
                    return found
    except (OSError, ValueError, KeyError, IndexError, TypeError, ZeroDivisionError):
        return None  # unreadable metadata is no pixel size; the image itself is read (and checked) elsewhere
    return None


def mismatch(image: float, trained: float | None) -> str | None:
    """A warning when an image's pixel size differs from the training pixel size by more than ``MISMATCH``."""
    if not trained or abs(image - trained) / trained <= MISMATCH:
        return None
    return (
        f"its pixel size {image:.4g} µm differs from the model's training pixel size {trained:.4g} µm by "
        f"{abs(image - trained) / trained:.0%}: features appear {trained / image:.2f}x their trained size; "
        "resample the image or train on this magnification"
    )

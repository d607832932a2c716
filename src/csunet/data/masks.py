"""Mask encodings: how the pixel values of a mask file map to class indices.

Two families cover what microscopists hand us: index maps (each pixel holds a class value) and colour-coded
masks (each class painted in a colour, often over the grey micrograph, as in NASA's Super set).
Decoded masks are uint8 (H, W) class indices with ``IGNORE_INDEX`` marking unlabelled pixels.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from csunet.data.errors import DataError
from csunet.data.io import dtype_range, is_grey_rgb, read_array
from csunet.errors import SettingsError

IGNORE_INDEX = 255
"""Class index of pixels that count in neither loss nor metrics (partial labels)."""

Colour = tuple[int, int, int]


def parse_colour(value: str | list | tuple) -> Colour:
    """'#0000ff', '0000ff', [0, 0, 255] or (0, 0, 255) -> (0, 0, 255) in 8-bit RGB."""
    if isinstance(value, str):
        text = value.strip().lstrip("#")
        if len(text) != 6:
            raise SettingsError(f"colour {value!r} is not of the form '#rrggbb'")
        try:
            return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))
        except ValueError:
            raise SettingsError(f"colour {value!r} is not of the form '#rrggbb'") from None
    channels = tuple(int(v) for v in value)
    if len(channels) != 3 or not all(0 <= v <= 255 for v in channels):
        raise SettingsError(f"colour {value!r} must be three 8-bit values")
    return channels  # type: ignore[return-value]


def format_colour(colour: Colour) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _describe_unknown(values: np.ndarray, counts: np.ndarray, render) -> str:
    order = np.argsort(-counts)[:10]
    listed = ", ".join(f"{render(values[i])} ({int(counts[i])} px)" for i in order)
    more = f" and {len(values) - 10} more" if len(values) > 10 else ""
    return f"{listed}{more}; {int(counts.sum())} pixels in all"


@dataclass(frozen=True)
class IndexEncoding:
    """Index map: raw pixel value -> class index; ``ignore`` is the raw value of unlabelled pixels."""

    values: dict[int, int]
    ignore: int | None = None
    kind: str = field(default="index", init=False)

    def decode(self, raw: np.ndarray, source: str | os.PathLike = "<array>") -> np.ndarray:
        if raw.ndim == 3:
            if not is_grey_rgb(raw):
                raise DataError(
                    f"{source}: mask has colour pixels but the description says masks are index maps; "
                    "use a colour encoding or save the mask as a single-channel image"
                )
            raw = raw[..., 0]
        is_integral = np.issubdtype(raw.dtype, np.integer) or raw.dtype == np.bool_
        if not is_integral and not np.all(np.mod(raw, 1) == 0):
            raise DataError(f"{source}: index mask holds non-integer values ({raw.dtype})")
        raw = raw.astype(np.int64, copy=False)
        table = dict(self.values)
        if self.ignore is not None:
            table[self.ignore] = IGNORE_INDEX
        uniques, inverse = np.unique(raw, return_inverse=True)
        mapped = np.array([table.get(int(v), -1) for v in uniques], dtype=np.int64)
        unknown = mapped < 0
        if unknown.any():
            counts = np.bincount(inverse.ravel(), minlength=len(uniques))[unknown]
            raise DataError(
                f"{source}: mask values outside the class table {sorted(self.values)}: "
                + _describe_unknown(uniques[unknown], counts, str)
            )
        return mapped.astype(np.uint8)[inverse.reshape(raw.shape)]


@dataclass(frozen=True)
class ColourEncoding:
    """Colour-coded mask: 8-bit RGB colour -> class index.

    ``default`` is the class of every pixel that matches no listed colour (NASA's Super rule: what is not pure
    blue or pure red is matrix); with ``default=None`` such pixels are an error. 16-bit masks match the same
    colours scaled to 16 bits (255 -> 65535). Alpha is ignored.
    """

    colours: dict[Colour, int]
    default: int | None = None
    ignore: Colour | None = None
    kind: str = field(default="colour", init=False)

    def decode(self, raw: np.ndarray, source: str | os.PathLike = "<array>") -> np.ndarray:
        if raw.ndim != 3:
            raise DataError(
                f"{source}: mask is single-channel but the description says masks are colour-coded; "
                "use an index encoding"
            )
        if not np.issubdtype(raw.dtype, np.integer):
            raise DataError(f"{source}: colour mask has non-integer pixel type {raw.dtype}")
        scale = int(dtype_range(raw.dtype)) // 255
        rgb = raw[..., :3].astype(np.int64)
        packed = (rgb[..., 0] << 32) | (rgb[..., 1] << 16) | rgb[..., 2]
        out = np.full(packed.shape, -1 if self.default is None else self.default, dtype=np.int64)
        table = dict(self.colours)
        if self.ignore is not None:
            table[self.ignore] = IGNORE_INDEX
        for colour, index in table.items():
            r, g, b = (c * scale for c in colour)
            out[packed == ((r << 32) | (g << 16) | b)] = index
        if self.default is None and (out < 0).any():
            uniques, counts = np.unique(packed[out < 0], return_counts=True)

            def render(code: int) -> str:
                return format_colour(
                    ((code >> 32) // scale, ((code >> 16) & 0xFFFF) // scale, (code & 0xFFFF) // scale)
                )

            raise DataError(
                f"{source}: mask colours outside the class table {[format_colour(c) for c in self.colours]}: "
                + _describe_unknown(uniques, counts, render)
            )
        return out.astype(np.uint8)


MaskEncoding = IndexEncoding | ColourEncoding


SPARSE_BELOW = 0.9
"""Masks with a smaller labelled share are strokes, not complete masks with a few pixels left out (a scale bar):
no clean-up is decided on them, as it compares the sizes and counts of whole regions, and the widths of their
regions are guessed (``csunet.train.plan``)."""


def labelled_share(masks: Iterable[np.ndarray]) -> float:
    """Share of the pixels of ``masks`` that are labelled (not ``IGNORE_INDEX``); 0 for no pixels."""
    labelled = total = 0
    for mask in masks:
        labelled, total = labelled + int((mask != IGNORE_INDEX).sum()), total + mask.size
    return labelled / max(total, 1)


def read_mask(path: str | os.PathLike, encoding: MaskEncoding) -> np.ndarray:
    """Read a mask file and decode it to uint8 (H, W) class indices."""
    return encoding.decode(read_array(path), path)

"""Reading micrographs and masks from TIFF, PNG and JPEG without losing bit depth.

Pillow silently keeps only the high byte of 16-bit RGB(A) TIFFs and PNGs, so TIFFs go through tifffile and
PNGs through imagecodecs; Pillow reads JPEG (always 8-bit).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from csunet.data.errors import DataError, DataWarning

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")


def collect_files(inputs: list[str | os.PathLike], in_folder: Callable[[Path], list[Path]]) -> list[Path]:
    """Files named directly, and for each named folder what ``in_folder`` finds in it, in the order given; a name
    that is neither is an error naming it."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found += in_folder(item)
        elif item.is_file():
            found.append(item)
        else:
            raise DataError(f"{item}: no such file or folder")
    return found


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def read_array(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to its raw array: (H, W) or (H, W, C), native dtype."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            array = _read_tiff(path)
        elif suffix == ".png":
            import imagecodecs

            array = imagecodecs.png_decode(path.read_bytes())
        elif suffix in (".jpg", ".jpeg"):
            from PIL import Image

            with Image.open(path) as img:
                array = np.asarray(img)
        else:
            raise DataError(f"{path}: unsupported file type {suffix!r} (expected one of {IMAGE_SUFFIXES})")
    except DataError:
        raise
    except Exception as exc:  # decoders raise many different types for corrupt files
        raise DataError(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from exc
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # planar TIFF (C, H, W)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[-1] == 2:  # grey with transparency (PNG "LA")
        opaque = np.iinfo(array.dtype).max if np.issubdtype(array.dtype, np.integer) else 1.0
        if not np.all(array[..., 1] == opaque):
            raise DataError(
                f"{path}: a grey image with a transparency channel that is not opaque everywhere; what lies under "
                "the transparent pixels is not defined. Save it without transparency (flatten it)"
            )
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise DataError(
            f"{path}: unsupported image shape {array.shape}; expected (H, W), (H, W, 3) or (H, W, 4) "
            "(multi-page stacks are not micrographs)"
        )
    return array


def _read_tiff(path: Path) -> np.ndarray:
    """A TIFF's image; of a multi-page stack, the first page with a warning (3- or 4-page stacks would otherwise
    pass for planar RGB/RGBA)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if len(tif.pages) > 1:
            warnings.warn(
                f"{path}: a stack of {len(tif.pages)} pages; reading the first page only",
                DataWarning,
                stacklevel=4,
            )
            return tif.pages[0].asarray()
        return tif.asarray()


def dtype_range(dtype: np.dtype) -> float:
    """The value that means 'full intensity' for a dtype: 255 for uint8, 65535 for uint16, 1 for floats."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return 1.0
    if np.issubdtype(dtype, np.integer):
        return float(np.iinfo(dtype).max)
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise DataError(f"unsupported pixel type {dtype}")


def is_grey_rgb(array: np.ndarray) -> bool:
    """True when an (H, W, 3|4) array holds the same value in its three colour channels."""
    return (
        array.ndim == 3
        and array.shape[-1] >= 3
        and np.array_equal(array[..., 0], array[..., 1])
        and np.array_equal(array[..., 0], array[..., 2])
    )


def to_float_image(array: np.ndarray, source: str | os.PathLike = "<array>") -> np.ndarray:
    """Raw image array -> float32 (H, W, C) in [0, 1], C = 1 for grey (including grey stored as RGB) or 3.

    Scaling is by the dtype's range, never by the image's own min/max, so intensities stay comparable
    between images. Alpha is dropped.
    """
    scale = dtype_range(array.dtype)
    if array.ndim == 3:
        array = array[..., :3]
        array = array[..., :1] if is_grey_rgb(array) else array
    else:
        array = array[..., None]
    if np.issubdtype(array.dtype, np.signedinteger) and array.min() < 0:
        raise DataError(
            f"{source}: signed {array.dtype} image with negative values (down to {array.min()}); "
            "save it as unsigned 8- or 16-bit, or as float scaled to [0, 1]"
        )
    image = array.astype(np.float32) / np.float32(scale)
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(image).all():
        bad = int((~np.isfinite(image)).sum())
        raise DataError(f"{source}: {bad} pixels are NaN or infinite; a micrograph needs a value at every pixel")
    if np.issubdtype(array.dtype, np.floating) and (image.min() < 0 or image.max() > 1):
        raise DataError(
            f"{source}: floating-point image with values in [{image.min():.3g}, {image.max():.3g}]; "
            "float images must already be scaled to [0, 1]"
        )
    return image


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a micrograph as float32 (H, W, C) in [0, 1] (C = 1 for grey, 3 for colour)."""
    return to_float_image(read_array(path), path)


def grey(image: np.ndarray) -> np.ndarray:
    """The mean over channels of an (H, W, C) image; an (H, W) one as it is."""
    return image.mean(axis=-1) if image.ndim == 3 else image

"""Reading and writing image collections: a flat folder of images, or an ImageFolder layout (one subfolder per
class). Images are written as PNG (8- or 16-bit, grey or RGB) so nothing is lost between steps."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from csunet.data.errors import DataError
from csunet.data.io import is_image_file, read_image
from csunet.utils import atomic_write_bytes


def list_collection(folder: str | Path) -> list[tuple[Path, str]]:
    """(image path, class name) for every image in ``folder`` (class "" for images directly in it)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    items = [(p, "") for p in sorted(folder.iterdir()) if is_image_file(p)]
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        items += [(p, sub.name) for p in sorted(sub.iterdir()) if is_image_file(p)]
    if not items:
        raise DataError(f"{folder}: no images found (directly or in class subfolders)")
    return items


def write_png(path: Path, image: np.ndarray) -> None:
    """A float image in [0, 1] (H, W, C) as 16-bit grey or 8-bit RGB PNG, written atomically."""
    if image.shape[-1] == 1:
        pil = Image.fromarray((np.clip(image[..., 0], 0, 1) * 65535 + 0.5).astype(np.uint16))
    else:
        pil = Image.fromarray((np.clip(image[..., :3], 0, 1) * 255 + 0.5).astype(np.uint8))
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def output_path(out: Path, class_name: str, name: str) -> Path:
    return out / class_name / name if class_name else out / name


__all__ = ["list_collection", "output_path", "read_image", "write_png"]

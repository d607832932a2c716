"""Pictures of masks: colour masks, overlays, and the paper's error panels, as uint8 RGB arrays and PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from csunet.data.masks import IGNORE_INDEX

ERROR_COLOURS = {
    "true_positive": (255, 255, 255),
    "true_negative": (0, 0, 0),
    "false_positive": (255, 0, 0),
    "false_negative": (0, 255, 255),
    "unlabelled": (128, 128, 128),
}


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """A float image in [0, 1] (H, W) or (H, W, C) as uint8 RGB for display."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return (np.clip(image[..., :3], 0, 1) * 255 + 0.5).astype(np.uint8)


def colour_mask(mask: np.ndarray, colours: Sequence[Sequence[int]]) -> np.ndarray:
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[: len(colours)] = np.asarray(colours, dtype=np.uint8)
    palette[IGNORE_INDEX] = ERROR_COLOURS["unlabelled"]
    return palette[mask]


def overlay(
    image_rgb: np.ndarray,
    mask: np.ndarray,
    colours: Sequence[Sequence[int]],
    alpha: float = 0.45,
    background: int | None = 0,
) -> np.ndarray:
    """The image with every class but ``background`` painted over it; the background (matrix) class leaves the
    image visible (None: every class is painted)."""
    painted = colour_mask(mask, colours).astype(np.float32)
    blend = image_rgb.astype(np.float32)
    where = (mask != IGNORE_INDEX) if background is None else (mask != background) & (mask != IGNORE_INDEX)
    blend[where] = (1 - alpha) * blend[where] + alpha * painted[where]
    return (blend + 0.5).astype(np.uint8)


def error_panel(predicted: np.ndarray, truth: np.ndarray, class_index: int) -> np.ndarray:
    """One class against the rest, coloured as in the paper: white TP, black TN, red FP, cyan FN."""
    pred, true = predicted == class_index, truth == class_index
    panel = np.zeros(truth.shape + (3,), dtype=np.uint8)
    panel[pred & true] = ERROR_COLOURS["true_positive"]
    panel[pred & ~true] = ERROR_COLOURS["false_positive"]
    panel[~pred & true] = ERROR_COLOURS["false_negative"]
    panel[truth == IGNORE_INDEX] = ERROR_COLOURS["unlabelled"]
    return panel


def foreground_error_panel(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """All non-background classes as foreground, coloured as the paper's figures: white TP, black TN, red FP,
    cyan FN; yellow where both are foreground but of different classes."""
    panel = error_panel((predicted > 0).astype(np.uint8), np.where(truth == IGNORE_INDEX, truth, truth > 0), 1)
    panel[(predicted > 0) & (truth > 0) & (predicted != truth) & (truth != IGNORE_INDEX)] = (255, 255, 0)
    return panel


def captioned_row(panels: Sequence[tuple[str, np.ndarray]], gap: int = 6, caption_height: int = 18) -> np.ndarray:
    """Panels of equal height side by side on white, each with its caption above."""
    height = max(p.shape[0] for _, p in panels)
    width = sum(p.shape[1] for _, p in panels) + gap * (len(panels) - 1)
    canvas = Image.new("RGB", (width, height + caption_height), "white")
    draw = ImageDraw.Draw(canvas)
    left = 0
    for caption, panel in panels:
        canvas.paste(Image.fromarray(panel), (left, caption_height))
        draw.text((left + 2, 3), caption, fill="black")
        left += panel.shape[1] + gap
    return np.asarray(canvas)


def tiff_bytes(array: np.ndarray, axes: str | None = None) -> bytes:
    """A TIFF file's bytes; with ``axes`` (``YX``, ``CYX``) every plane is grey and the axes are recorded, without
    them tifffile decides (an (H, W, 3) array is RGB)."""
    import tifffile

    buffer = io.BytesIO()
    if axes:
        tifffile.imwrite(buffer, array, photometric="minisblack", metadata={"axes": axes})
    else:
        tifffile.imwrite(buffer, array)
    return buffer.getvalue()


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()

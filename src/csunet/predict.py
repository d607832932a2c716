"""Segment micrographs of any size with a trained checkpoint and write masks, overlays, probabilities and
uncertainty maps.

Outputs per image ``NAME``: ``NAME_mask.png`` (or ``.tif``; class indices, opens as a label image in Fiji and
napari), ``NAME_overlay.png`` (classes painted over the image), and on request ``NAME_probabilities.tif``
(float32, one plane per class) and ``NAME_uncertainty.tif`` / ``.png`` (normalised entropy in [0, 1]: where the
model hesitates, and where labelling more would help most). Every file is written atomically.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import tifffile
import torch
from rich.progress import track

from csunet.checkpoint import LoadedCheckpoint
from csunet.data.errors import DataError
from csunet.data.io import IMAGE_SUFFIXES, is_image_file, read_image
from csunet.errors import SettingsError, check_range
from csunet.export import load_engine
from csunet.inference import check_overlap, default_device, sliding_window_logits
from csunet.metrics import predicted_classes
from csunet.prediction_folder import MASK_SUFFIX, manifest_path, write_manifest
from csunet.render import overlay, png_bytes, to_rgb8
from csunet.utils import atomic_write_bytes, keep_freed_memory, writable_folder

MASK_FORMATS = ("png", "tif")


def collect_images(inputs: list[str | os.PathLike]) -> list[Path]:
    """Image files named directly or found (not recursively) in named folders, in a stable order."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            images = sorted(p for p in item.iterdir() if is_image_file(p))
            if not images:
                raise DataError(f"{item}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
            found += images
        elif item.is_file():
            found.append(item)
        else:
            raise DataError(f"{item}: no such file or folder")
    return found


def normalised_tensor(image: np.ndarray, meta: dict) -> torch.Tensor:
    """(H, W, C) float image in [0, 1] -> (C, H, W) tensor normalised as in training, over the whole image at once.

    Filled one channel at a time, so a huge image needs no full-size temporaries beyond the result.
    """
    channels = meta["channels"]
    if image.shape[-1] not in (1, channels):
        raise DataError(f"image has {image.shape[-1]} channels, the model takes {channels}")
    mean, std = meta["normalisation"]["mean"], meta["normalisation"]["std"]
    tensor = torch.empty(channels, *image.shape[:2])
    for channel in range(channels):
        plane = image[..., channel if image.shape[-1] > 1 else 0]
        tensor[channel] = torch.from_numpy(np.subtract(plane, mean[channel], dtype=np.float32)).div_(std[channel])
    return tensor


def class_probabilities(logits: torch.Tensor, activation: str) -> torch.Tensor:
    """(K, H, W) probabilities as the training loss defines them (sigmoid per class, or softmax); a binary
    model's single channel p becomes the two planes 1 - p, p."""
    if logits.shape[0] == 1:
        foreground = torch.sigmoid(logits)
        return torch.cat([1 - foreground, foreground])
    return torch.sigmoid(logits) if activation == "sigmoid" else torch.softmax(logits, dim=0)


def normalised_entropy(probabilities: torch.Tensor) -> torch.Tensor:
    """Entropy of the class distribution at each pixel divided by log K: 0 = certain, 1 = undecided."""
    p = probabilities / probabilities.sum(0, keepdim=True).clamp_min(1e-12)
    entropy = -(p * p.clamp_min(1e-12).log()).sum(0)
    return entropy / np.log(max(p.shape[0], 2))


def _tiff_bytes(array: np.ndarray, axes: str) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, photometric="minisblack", metadata={"axes": axes})
    return buffer.getvalue()


def predict_one(
    loaded: LoadedCheckpoint, image: np.ndarray, overlap: float = 0.5, tta: str = "none", batch_size: int = 4
) -> torch.Tensor:
    """Logits (K, H, W) on the CPU for one (H, W, C) float image of any size."""
    tensor = normalised_tensor(image, loaded.meta)
    return sliding_window_logits(loaded.model, tensor, loaded.meta["tile_size"], overlap, batch_size, tta, "cpu")


def predict(
    checkpoint: str | os.PathLike,
    inputs: list[str | os.PathLike],
    out: str | os.PathLike,
    overlap: float = 0.5,
    tta: str = "none",
    batch_size: int = 4,
    mask_format: str = "png",
    probabilities: bool = False,
    uncertainty: bool = False,
    device: str | None = None,
    progress: bool = True,
    engine: str = "torch",
    overwrite: bool = False,
) -> list[dict]:
    """Segment every image in ``inputs``; one record per image with the files written or the error met.

    ``checkpoint`` is a training checkpoint or its ONNX export; ``engine='onnx'`` runs ONNX Runtime (see
    :func:`csunet.export.load_engine`). A file that cannot be read is reported and skipped; the others are still
    segmented. ``predictions.json`` beside the outputs lists them with the classes, colours and pixel size that
    `csunet measure` and `csunet report` read; it is rewritten after every image, and says ``complete`` only at
    the end. A folder holding another run's outputs is refused unless ``overwrite``.
    """
    if mask_format not in MASK_FORMATS:
        raise SettingsError(f"unknown mask format {mask_format!r}; choose from {', '.join(MASK_FORMATS)}")
    check_overlap(overlap)
    check_range("predict", "batch_size", batch_size, 1)
    images = collect_images(inputs)
    refuse_same_names(images)
    out = writable_folder(out, "predictions")
    if not overwrite:
        refuse_earlier_outputs(out)
    keep_freed_memory()
    loaded = load_engine(checkpoint, engine, device or default_device())
    manifest = {
        "checkpoint": str(checkpoint),
        "classes": loaded.classes,
        "colours": loaded.meta["colours"],
        "pixel_size_um": loaded.meta.get("pixel_size_um"),
        "background": loaded.meta.get("background", 0),
        "inputs": len(images),
        "complete": False,
        "images": [],
    }
    write_manifest(out, manifest)  # before any work: an unwritable --out fails now, not after the first image
    records = manifest["images"]
    for path in track(images, description="segmenting") if progress else images:
        try:
            image = read_image(path)
            with torch.no_grad():
                logits = predict_one(loaded, image, overlap, tta, batch_size)
        except (DataError, ValueError) as exc:
            records.append({"image": str(path), "error": str(exc)})
            continue
        records.append(
            {
                "image": str(path),
                **write_outputs(loaded, path.stem, image, logits, out, mask_format, probabilities, uncertainty),
            }
        )
        write_manifest(out, manifest)
    manifest["complete"] = True
    write_manifest(out, manifest)
    return records


def refuse_same_names(images: list[Path]) -> None:
    """Outputs are named by the image's name: two images of one name (``A/a.tif``, ``B/a.tif``) would write the
    same files, the second replacing the first."""
    seen: dict[str, Path] = {}
    for path in images:
        if path.stem in seen:
            raise DataError(
                f"{seen[path.stem]} and {path} would both be written as {path.stem}{MASK_SUFFIX}.*; segment them "
                "into different --out folders, or rename one"
            )
        seen[path.stem] = path


def refuse_earlier_outputs(out: Path) -> None:
    """A folder holding an earlier run's masks would mix two runs (`csunet measure` takes the folder whole)."""
    if not out.is_dir():
        return
    earlier = sorted(p.name for p in out.iterdir() if p.stem.endswith(MASK_SUFFIX))
    if earlier or manifest_path(out).exists():
        found = f"{len(earlier)} masks ({', '.join(earlier[:3])}{', ...' if len(earlier) > 3 else ''})"
        raise DataError(
            f"{out} already holds the outputs of an earlier prediction run ({found if earlier else 'its predictions.json'}); "
            "choose another --out, or --overwrite to replace them"
        )


STRIP_ROWS = 256
"""Rows turned into mask and overlay at a time: full-size temporaries (int64 arg-max, float blends) never exist."""


def class_mask(logits: torch.Tensor) -> np.ndarray:
    """(H, W) uint8 class indices of (K, H, W) logits."""
    mask = np.empty(logits.shape[1:], dtype=np.uint8)
    for top in range(0, mask.shape[0], STRIP_ROWS):
        mask[top : top + STRIP_ROWS] = predicted_classes(logits[None, :, top : top + STRIP_ROWS])[0].numpy()
    return mask


def overlay_in_strips(image: np.ndarray, mask: np.ndarray, colours, background: int | None = 0) -> np.ndarray:
    """:func:`csunet.render.overlay` of the float image, computed strip by strip."""
    out = np.empty((*mask.shape, 3), dtype=np.uint8)
    for top in range(0, mask.shape[0], STRIP_ROWS):
        rows = slice(top, top + STRIP_ROWS)
        out[rows] = overlay(to_rgb8(image[rows]), mask[rows], colours, background=background)
    return out


def write_outputs(
    loaded: LoadedCheckpoint,
    stem: str,
    image: np.ndarray,
    logits: torch.Tensor,
    out: Path,
    mask_format: str = "png",
    probabilities: bool = False,
    uncertainty: bool = False,
) -> dict:
    mask = class_mask(logits)
    written = {}
    mask_path = out / f"{stem}{MASK_SUFFIX}.{mask_format}"
    atomic_write_bytes(mask_path, png_bytes(mask) if mask_format == "png" else _tiff_bytes(mask, "YX"))
    written["mask"] = str(mask_path)
    overlay_path = out / f"{stem}_overlay.png"
    atomic_write_bytes(
        overlay_path, png_bytes(overlay_in_strips(image, mask, loaded.colours, loaded.meta.get("background", 0)))
    )
    written["overlay"] = str(overlay_path)
    probs = class_probabilities(logits, loaded.meta["activation"]) if (probabilities or uncertainty) else None
    if probabilities:
        path = out / f"{stem}_probabilities.tif"
        atomic_write_bytes(path, _tiff_bytes(probs.numpy().astype(np.float32), "CYX"))
        written["probabilities"] = str(path)
    if uncertainty:
        entropy = normalised_entropy(probs).numpy().astype(np.float32)
        path = out / f"{stem}_uncertainty.tif"
        atomic_write_bytes(path, _tiff_bytes(entropy, "YX"))
        atomic_write_bytes(path.with_suffix(".png"), png_bytes((entropy * 255 + 0.5).astype(np.uint8)))
        written["uncertainty"] = str(path)
    fractions = np.bincount(mask.ravel(), minlength=len(loaded.classes)) / mask.size
    written["class_fractions"] = {name: round(float(f), 6) for name, f in zip(loaded.classes, fractions)}
    written["size"] = [int(mask.shape[1]), int(mask.shape[0])]
    return written

"""Segment micrographs of any size with a trained checkpoint and write masks, overlays, probabilities and
uncertainty maps.

Outputs per image ``NAME``: ``NAME_mask.png`` (or ``.tif``; class indices, opens as a label image in Fiji and
napari), ``NAME_overlay.png`` (classes painted over the image), and on request ``NAME_probabilities.tif``
(float32, one plane per class) and ``NAME_uncertainty.tif`` / ``.png`` (normalised entropy in [0, 1]: where the
model hesitates, and where labelling more would help most). Every file is written atomically.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import torch
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from csunet.checkpoint import CheckpointError, LoadedCheckpoint
from csunet.data.errors import DataError, DataWarning
from csunet.data.io import IMAGE_SUFFIXES, collect_files, is_image_file, read_array, read_image
from csunet.data.pixel_size import mismatch, pixel_size_from_file
from csunet.errors import SettingsError, check_range
from csunet.export import ENGINES, choose_engine, load_engine
from csunet.export.bundle import resolve as resolve_bundle
from csunet.export.onnx import source_stamp
from csunet.inference import DEFAULT_TTA, check_overlap, default_device
from csunet.interchange import check_exports, write_ome_zarr, write_vector_exports
from csunet.prediction_folder import (
    MASK_SUFFIX,
    OUTPUT_KEYS,
    FolderRun,
    clear_earlier_run,
    finished_records,
)
from csunet.predictor import STRIP_ROWS, Prediction, Predictor
from csunet.render import overlay, png_bytes, tiff_bytes, to_rgb8
from csunet.sharding import parse_shard, shard_of
from csunet.utils import atomic_write_bytes, keep_freed_memory, writable_folder

MASK_FORMATS = ("png", "tif")


def collect_images(inputs: list[str | os.PathLike]) -> list[Path]:
    """Image files named directly or found (not recursively) in named folders, in a stable order."""
    return collect_files(inputs, folder_images)


def folder_images(folder: Path) -> list[Path]:
    images = sorted(p for p in folder.iterdir() if is_image_file(p))
    if not images:
        raise DataError(f"{folder}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return images


def refuse_output_among_inputs(out: str | os.PathLike, images: list[Path]) -> None:
    """Masks and overlays written beside the images they came from would be segmented as images by the next run
    over that folder: the output folder may not hold any of the inputs."""
    target = Path(out).resolve()
    for image in images:
        if image.resolve().parent == target:
            raise SettingsError(
                f"--out {out}: the folder of the input {image.name}; predictions there would be read as images by "
                "the next run over it. Choose another output folder"
            )


def predict(
    checkpoint: str | os.PathLike,
    inputs: list[str | os.PathLike],
    out: str | os.PathLike,
    overlap: float = 0.5,
    tta: str = DEFAULT_TTA,
    batch_size: int = 4,
    mask_format: str = "png",
    probabilities: bool = False,
    uncertainty: bool = False,
    device: str | None = None,
    progress: bool = True,
    engine: str = "auto",
    overwrite: bool = False,
    shard: str | tuple[int, int] | None = None,
    cleanup: list[str] | None = None,
    exports: list[str] | None = None,
) -> list[dict]:
    """Segment every image in ``inputs``; one record per image with the files written or the error met.

    ``checkpoint`` is a training checkpoint or one of its exports; ``engine`` picks what runs it
    (:func:`csunet.export.load_engine`; ``auto``: the fastest valid one here). A file that cannot be read is reported
    and skipped; the others are still segmented.

    ``predictions.json`` beside the outputs lists them with the classes, colours and pixel size that `csunet measure`
    and `csunet report` read, and the settings that made them; it says ``complete`` at the end. Each finished image
    is also appended to ``predictions.done.jsonl`` once all its files are written, and running the same command
    again continues an interrupted run: images listed there are skipped, the rest (a half-written one included)
    are redone. A folder holding outputs of other images or of other settings is refused unless ``overwrite``.

    ``shard`` ``"K/N"`` segments only every N-th image starting with the K-th (job arrays: one process per node or
    GPU; under ``torchrun`` the rank decides) into ``predictions.shard-K-of-N.json``; the shard that finishes last
    merges the N lists into ``predictions.json``.

    Masks are cleaned as the checkpoint says (:mod:`csunet.cleanup`), changed by ``cleanup`` settings
    (``["off"]``: as the model predicts).
    """
    index, count, images = checked_request(inputs, out, overlap, batch_size, mask_format, shard, exports)
    exports = check_exports(exports)
    checkpoint = resolve_bundle(checkpoint) or checkpoint  # a bundle or an installed model: its ONNX model
    device = device or (launcher_device() if count > 1 else None) or default_device()
    if engine not in ENGINES:
        raise SettingsError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    if not Path(checkpoint).is_file():
        raise CheckpointError(f"{checkpoint}: no such checkpoint or model file")
    settings = {
        "checkpoint": {"path": str(Path(checkpoint).resolve()), **source_stamp(Path(checkpoint))},
        "engine": choose_engine(checkpoint, device) if engine == "auto" else engine,
        "overlap": overlap,
        "mask_format": mask_format,
        "probabilities": probabilities,
        "uncertainty": uncertainty,
        "cleanup": list(cleanup or []),
        "exports": exports,
    }
    keep_freed_memory()
    # the model and its clean-up first: a checkpoint or setting that fails touches no earlier outputs
    loaded = load_engine(checkpoint, settings["engine"], device)
    predictor = Predictor.of(loaded, overlap, tta, batch_size, settings["cleanup"])
    settings["tta"] = predictor.tta_mode  # what ran ("auto" resolved), so a rerun continues only the same outputs
    out = writable_folder(out, "predictions")
    if overwrite and count == 1:  # shards of one run would delete each other's outputs
        clear_earlier_run(out, OUTPUT_KEYS)
    done = {} if overwrite else finished_records(out, settings, images, (index, count))
    mine = shard_of(images, index, count)
    manifest = {
        "checkpoint": str(checkpoint),
        "classes": loaded.classes,
        "colours": loaded.meta.colours,
        "pixel_size_um": loaded.meta.pixel_size_um,
        "background": loaded.meta.background,
        "cleanup": predictor.cleanup.describe() if predictor.cleanup else "none",
        "settings": settings,
        "inputs": len(mine),
        "complete": False,
        "images": [],
    }
    if count > 1:
        manifest["shard"] = [index, count]
    skipped = sum(str(path) in done for path in mine)
    with (
        image_progress(progress, len(mine), skipped) as advance,
        FolderRun(out, manifest, (index, count), overwrite, on_image=advance) as run,
    ):

        def segment(path: Path, image: np.ndarray | Exception) -> Callable[[], None]:
            """Logits of one image now; its writing, as a task for the writing thread."""
            try:
                if isinstance(image, Exception):
                    raise image
                prediction = predictor.predict_array(image)
            except (DataError, ValueError) as exc:
                return partial(run.record, {"image": str(path), "error": str(exc)}, True)

            def write() -> None:
                written = write_outputs(loaded, path.stem, image, prediction, out, mask_format, probabilities,
                                        uncertainty)  # fmt: skip
                found = recorded_pixel_size(path, loaded.meta.pixel_size_um)
                written |= write_exports(loaded, path, prediction.mask, out, exports,
                                         found.get("pixel_size_um", loaded.meta.pixel_size_um))  # fmt: skip
                run.record({"image": str(path), **written, **found}, True)

            return write

        # the next image is decoded and the last one written while the engine works on this one
        with (
            closing(read_ahead([path for path in mine if str(path) not in done])) as todo,
            ThreadPoolExecutor(1, thread_name_prefix="csunet-write") as writer,
        ):
            writing = None
            for path in mine:
                task = partial(run.record, done[str(path)], False) if str(path) in done else segment(*next(todo))
                if writing is not None:
                    writing.result()  # one image at most waits to be written; its error stops the run here
                writing = writer.submit(task)
            if writing is not None:
                writing.result()
        run.complete(images)
    return manifest["images"]


def recorded_pixel_size(path: Path, trained_um: float | None) -> dict:
    """The pixel size the image file records (and where), for its record; a warning when it is far from the
    model's training pixel size (the model has learnt features of one size)."""
    found = pixel_size_from_file(path)
    if found is None:
        return {}
    record = {"pixel_size_um": found.um, "pixel_size_source": found.source}
    problem = mismatch(found.um, trained_um)
    if problem:
        record["pixel_size_warning"] = problem
        warnings.warn(f"{path}: {problem}", DataWarning, stacklevel=2)
    return record


def read_ahead(paths: list[Path]) -> Iterator[tuple[Path, np.ndarray | Exception]]:
    """(path, image or the error reading it met) for each path in order; the next file is decoded on a thread of
    its own while the caller works on this one."""

    def read(path: Path) -> np.ndarray | Exception:
        try:
            return read_image(path)
        except (DataError, ValueError) as exc:
            return exc

    with ThreadPoolExecutor(1, thread_name_prefix="csunet-read") as reader:
        reading = [reader.submit(read, path) for path in paths[:1]]
        for position, path in enumerate(paths):
            image = reading.pop()
            if position + 1 < len(paths):
                reading.append(reader.submit(read, paths[position + 1]))
            yield path, image.result()


def checked_request(
    inputs: list[str | os.PathLike],
    out: str | os.PathLike,
    overlap: float = 0.5,
    batch_size: int = 4,
    mask_format: str = "png",
    shard: str | tuple[int, int] | None = None,
    exports: list[str] | None = None,
) -> tuple[int, int, list[Path]]:
    """The shard (K, N) and the images of a prediction request, every setting and path checked: what the command
    line says before it spends time exporting the model for an engine."""
    if mask_format not in MASK_FORMATS:
        raise SettingsError(f"unknown mask format {mask_format!r}; choose from {', '.join(MASK_FORMATS)}")
    check_overlap(overlap)
    check_exports(exports)
    check_range("predict", "batch_size", batch_size, 1)
    index, count = launch_shard(shard)
    images = collect_images(inputs)
    refuse_same_names(images)
    refuse_output_among_inputs(out, images)
    return index, count, images


def launch_shard(shard: str | tuple[int, int] | None) -> tuple[int, int]:
    """(K, N) of :func:`csunet.sharding.parse_shard`; without one, the rank and world size of a ``torchrun`` launch,
    or (1, 1)."""
    if shard is None:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return (int(os.environ.get("RANK", "0")) + 1, world) if world > 1 else (1, 1)
    return parse_shard(shard)


def launcher_device() -> str | None:
    """The GPU of this process under ``torchrun`` (its local rank), when there are GPUs."""
    if "LOCAL_RANK" in os.environ and torch.cuda.is_available():
        return f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"
    return None


@contextmanager
def image_progress(show: bool, total: int, skipped: int):
    """A progress bar over images with throughput and time left; yields the function that counts one done."""
    if not show:
        yield lambda: None
        return
    columns = [
        TextColumn("segmenting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    ]
    started = time.perf_counter()
    with Progress(*columns) as bar:
        task = bar.add_task("segmenting", total=total, completed=skipped, rate="")
        done = 0

        def advance() -> None:
            nonlocal done
            done += 1
            seconds = (time.perf_counter() - started) / done
            rate = f"{1 / seconds:.2f} images/s" if seconds < 1 else f"{seconds:.1f} s/image"
            bar.update(task, advance=1, rate=rate)

        if skipped:
            bar.console.print(f"{skipped} of {total} images were done by an earlier run of this command; skipped")
        yield advance


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


def overlay_in_strips(image: np.ndarray, mask: np.ndarray, colours, background: int | None = 0) -> np.ndarray:
    """:func:`csunet.render.overlay` of the float image, computed strip by strip."""
    out = np.empty((*mask.shape, 3), dtype=np.uint8)
    for top in range(0, mask.shape[0], STRIP_ROWS):
        rows = slice(top, top + STRIP_ROWS)
        out[rows] = overlay(to_rgb8(image[rows]), mask[rows], colours, background=background)
    return out


def write_exports(
    loaded: LoadedCheckpoint, path: Path, mask: np.ndarray, out: Path, exports: list[str], pixel_size: float | None
) -> dict:
    """The mask of the image at ``path`` as ROI set, GeoJSON and OME-Zarr (with the image), as ``exports`` asks."""
    meta = loaded.meta
    written = write_vector_exports(out, path.stem, mask, loaded.classes, meta.colours, meta.background, exports)
    if "ome-zarr" in exports:
        target = out / f"{path.stem}.ome.zarr"
        write_ome_zarr(target, read_array(path), mask, loaded.classes, meta.colours, pixel_size)
        written["ome_zarr"] = str(target)
    return written


def write_outputs(
    loaded: LoadedCheckpoint,
    stem: str,
    image: np.ndarray,
    prediction: Prediction,
    out: Path,
    mask_format: str = "png",
    probabilities: bool = False,
    uncertainty: bool = False,
) -> dict:
    """Write the mask (cleaned), the overlay and on request probabilities and uncertainty of one image."""
    mask = prediction.mask
    written = {}
    mask_path = out / f"{stem}{MASK_SUFFIX}.{mask_format}"
    atomic_write_bytes(mask_path, png_bytes(mask) if mask_format == "png" else tiff_bytes(mask, "YX"))
    written["mask"] = str(mask_path)
    overlay_path = out / f"{stem}_overlay.png"
    atomic_write_bytes(
        overlay_path, png_bytes(overlay_in_strips(image, mask, loaded.colours, loaded.meta.background))
    )
    written["overlay"] = str(overlay_path)
    if probabilities:
        path = out / f"{stem}_probabilities.tif"
        atomic_write_bytes(path, tiff_bytes(prediction.probabilities.numpy().astype(np.float32), "CYX"))
        written["probabilities"] = str(path)
    if uncertainty:
        entropy = prediction.uncertainty
        path = out / f"{stem}_uncertainty.tif"
        atomic_write_bytes(path, tiff_bytes(entropy, "YX"))
        atomic_write_bytes(path.with_suffix(".png"), png_bytes((entropy * 255 + 0.5).astype(np.uint8)))
        written["uncertainty"] = str(path)
    fractions = np.bincount(mask.ravel(), minlength=len(loaded.classes)) / mask.size
    written["class_fractions"] = {name: round(float(f), 6) for name, f in zip(loaded.classes, fractions)}
    written["size"] = [int(mask.shape[1]), int(mask.shape[0])]
    return written

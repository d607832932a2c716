"""Model bundles: one zip file a colleague can use without csunet's training stack, offline.

A bundle is a bioimage.io model package (format 0.5: ``rdf.yaml`` at its root, validated by ``bioimageio.spec``)
holding the ONNX model (with csunet's metadata inside), the OpenVINO int8 model when `csunet export --int8`
accepted one, a test input and its output, and a README. What bioimage.io's format has no field for lives in
``config.csunet`` of the rdf: classes and colours (it names output channels only), the tile size, the training
pixel size, the clean-up rules, the recipe, the test metrics, and the SHA-256 of every file of the bundle. A bundle
whose files do not match their hashes is refused, naming the file.

Bundles are unpacked (verified) into csunet's cache once and run there by the ONNX Runtime or OpenVINO engines:
`csunet predict BUNDLE.zip ...`, napari's Segment widget, and `csunet models install BUNDLE.zip`, which keeps it in
the user's model folder under its name, so that `csunet predict NAME ...` finds it. Nothing here opens a network
connection.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from csunet.checkpoint import META_KEY, CheckpointError, CheckpointMeta, read_checkpoint
from csunet.export.onnx import OnnxRuntimeModel, ensure_onnx
from csunet.runs import RunFolder
from csunet.utils import atomic_folder, atomic_write_bytes, cache_dir, writable_file

RDF = "rdf.yaml"
MODEL = "model.onnx"
INT8_FILES = ("model.int8.xml", "model.int8.bin")
TEST_INPUT, TEST_OUTPUT = "test_input.npy", "test_output.npy"
README = "README.md"
BUNDLE_SUFFIX = ".zip"
MODELS_DIR_ENV = "CSUNET_MODELS_DIR"
FORMAT_VERSION = "0.5.4"
CITATION = {
    "text": "Alrfou, Zhao & Kordijazi. CS-UNet: a generalizable and flexible segmentation algorithm. CVPR "
    "Workshops 2024 (arXiv 2308.13917).",
    "doi": "10.48550/arXiv.2308.13917",
}


class BundleError(CheckpointError):
    """A bundle that is not one, is damaged, or was changed."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def models_dir() -> Path:
    """Where installed bundles live (``$CSUNET_MODELS_DIR`` or the user's data folder)."""
    from platformdirs import user_data_dir

    return Path(os.environ.get(MODELS_DIR_ENV) or Path(user_data_dir("csunet")) / "models")


def bundle_cache() -> Path:
    """Where bundles are unpacked to run (csunet's cache, beside downloaded weights)."""
    return cache_dir() / "bundles"


def _identifier(text: str) -> str:
    """A bioimage.io identifier (letters, digits, underscores) from a class name."""
    cleaned = re.sub(r"\W+", "_", text).strip("_").lower() or "class"
    return cleaned if cleaned[0].isalpha() else f"c_{cleaned}"


def _test_input(meta: CheckpointMeta) -> np.ndarray:
    """A tile of the bundled sample micrograph, as the model's input before normalisation: (1, C, T, T) in [0, 1]."""
    from csunet.data.dataset import sample_root
    from csunet.data.io import read_image

    image = read_image(sorted((sample_root() / "test").iterdir())[0])
    tile = np.zeros((meta.tile_size, meta.tile_size, image.shape[-1]), np.float32)
    crop = image[: meta.tile_size, : meta.tile_size]
    tile[: crop.shape[0], : crop.shape[1]] = crop
    if tile.shape[-1] != meta.channels:
        tile = np.repeat(tile[..., :1], meta.channels, axis=-1)
    return np.ascontiguousarray(tile.transpose(2, 0, 1)[None])


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _run_record(checkpoint: Path) -> dict:
    """Test metrics and the run's name, when the checkpoint still sits in its run folder."""
    run = RunFolder(checkpoint.parent.parent)
    record = {}
    if run.test_metrics.is_file():
        test = json.loads(run.test_metrics.read_text())
        record["test_metrics"] = {k: test[k] for k in ("nasa_iou", "miou_without_background", "per_class_iou")
                                  if k in test}  # fmt: skip
    record["run"] = run.path.name
    return record


def write_bundle(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike | None = None,
    name: str | None = None,
    license: str = "MIT",
    authors: list[str] | None = None,
    description: str | None = None,
) -> Path:
    """Write the bundle of the training checkpoint ``checkpoint`` (default: ``NAME.zip`` beside it)."""
    checkpoint = Path(checkpoint)
    meta = CheckpointMeta.from_dict(read_checkpoint(checkpoint)[META_KEY], checkpoint)
    record = _run_record(checkpoint)
    name = name or re.sub(r"[^A-Za-z0-9_+\- ()]", "-", f"csunet {meta.model} {record['run']}")[:128]
    if not re.fullmatch(r"[A-Za-z0-9_+\- ()]{5,128}", name):
        raise BundleError(f"bundle name {name!r}: 5-128 letters, digits, spaces and _+-() only")
    out = writable_file(
        checkpoint.parent / f"{_identifier(name)}{BUNDLE_SUFFIX}" if out is None else out, "bundle"
    )
    onnx_path = ensure_onnx(checkpoint)[0]
    files = {MODEL: onnx_path.read_bytes()}
    from csunet.export.openvino import int8_is_current, ir_path

    int8 = ir_path(checkpoint, int8=True)
    if int8.is_file() and int8_is_current(checkpoint):
        files[INT8_FILES[0]] = int8.read_bytes()
        files[INT8_FILES[1]] = int8.with_suffix(".bin").read_bytes()
    test_input = _test_input(meta)
    normalised = (test_input - np.array(meta.normalisation.mean, np.float32)[:, None, None]) / np.array(
        meta.normalisation.std, np.float32
    )[:, None, None]
    test_output = OnnxRuntimeModel(onnx_path)(torch.from_numpy(normalised)).numpy()
    files[TEST_INPUT], files[TEST_OUTPUT] = _npy(test_input), _npy(test_output)
    description = description or (
        f"{meta.model} segmenting {', '.join(meta.classes)} in micrographs; trained with csunet's "
        f"{meta.recipe.get('recipe', '?')} recipe on {meta.recipe.get('data', '?')}."
    )
    files[README] = _readme(name, description, meta, record).encode()
    rdf = _rdf(name, description, meta, record, files, license, authors or ["csunet user"])
    files[RDF] = yaml.safe_dump(rdf, sort_keys=False, allow_unicode=True).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file_name, data in files.items():
            archive.writestr(file_name, data)
    atomic_write_bytes(out, buffer.getvalue())
    return out


def _rdf(name, description, meta: CheckpointMeta, record: dict, files: dict, license: str, authors) -> dict:
    tile = meta.tile_size
    channel_names = (
        ["r", "g", "b"][: meta.channels] if meta.channels <= 3 else [f"c{i}" for i in range(meta.channels)]
    )
    outputs = [meta.classes[1]] if meta.out_channels == 1 else meta.classes
    # an ONNX opset is recorded in the model file itself
    import onnx

    opset = max(
        entry.version
        for entry in onnx.load_from_string(files[MODEL]).opset_import
        if entry.domain in ("", "ai.onnx")
    )
    return {
        "type": "model",
        "format_version": FORMAT_VERSION,
        "name": name,
        "description": description,
        "authors": [{"name": author} for author in authors],
        "cite": [CITATION],
        "license": license,
        "documentation": README,
        "tags": ["segmentation", "microscopy", "materials-science", "2d", "onnx", "csunet"],
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
        "inputs": [{
            "id": "raw",
            "description": "micrograph tiles, intensities scaled to [0, 1] (8-bit: value / 255)",
            "axes": [{"type": "batch"}, {"type": "channel", "channel_names": channel_names},
                     {"type": "space", "id": "y", "size": tile}, {"type": "space", "id": "x", "size": tile}],
            "test_tensor": {"source": TEST_INPUT, "sha256": sha256(files[TEST_INPUT])},
            "data": {"type": "float32"},
            "preprocessing": [{"id": "fixed_zero_mean_unit_variance", "kwargs": {
                "mean": [float(v) for v in meta.normalisation.mean], "std": [float(v) for v in meta.normalisation.std],
                "axis": "channel"}}],
        }],
        "outputs": [{
            "id": "logits",
            "description": f"per-class logits ({meta.activation}); the class of a pixel is the arg-max"
            + (" (one channel: the foreground above 0)" if meta.out_channels == 1 else ""),
            "axes": [{"type": "batch"}, {"type": "channel", "channel_names": [_identifier(c) for c in outputs]},
                     {"type": "space", "id": "y", "size": {"tensor_id": "raw", "axis_id": "y"}},
                     {"type": "space", "id": "x", "size": {"tensor_id": "raw", "axis_id": "x"}}],
            "test_tensor": {"source": TEST_OUTPUT, "sha256": sha256(files[TEST_OUTPUT])},
            "data": {"type": "float32"},
        }],
        "weights": {"onnx": {"source": MODEL, "sha256": sha256(files[MODEL]), "opset_version": int(opset)}},
        "config": {"csunet": {
            "bundle_format": 1,
            "classes": list(meta.classes),
            "colours": [list(c) for c in meta.colours],
            "background": meta.background,
            "tile_size": tile,
            "pixel_size_um": meta.pixel_size_um,
            "activation": meta.activation,
            "cleanup": meta.cleanup,
            "recipe": meta.recipe,
            **record,
            "files": {file_name: sha256(data) for file_name, data in files.items() if file_name != RDF},
        }},
    }  # fmt: skip


def _readme(name: str, description: str, meta: CheckpointMeta, record: dict) -> str:
    test = record.get("test_metrics", {})
    score = f"test NASA IoU {test['nasa_iou']:.3f}" if "nasa_iou" in test else "no test score recorded"
    pixel = f"{meta.pixel_size_um} µm per pixel" if meta.pixel_size_um else "pixel size not recorded"
    return (
        f"# {name}\n\n{description}\n\nClasses: {', '.join(meta.classes)}. Tiles of {meta.tile_size} pixels; "
        f"trained at {pixel}; {score}.\n\nWith csunet: `csunet models install THIS.zip`, then `csunet predict "
        f"NAME images/ --out masks/` (or `csunet predict THIS.zip ...`). Elsewhere: the ONNX model takes tiles "
        "scaled to [0, 1] then normalised as rdf.yaml says, and returns per-class logits.\n"
        + (f"\nThe model works at scale {meta.scale:g}: resample each image by {meta.scale:g} before tiling it, "
           "and the logits back to the image's size (csunet does both).\n" if meta.scale != 1 else "")
    )  # fmt: skip


@dataclass(frozen=True)
class Bundle:
    """An unpacked, verified bundle."""

    folder: Path
    rdf: dict

    @property
    def config(self) -> dict:
        return self.rdf["config"]["csunet"]

    @property
    def model(self) -> Path:
        return self.folder / MODEL

    @property
    def name(self) -> str:
        return self.rdf["name"]

    def describe(self) -> dict:
        test = self.config.get("test_metrics", {})
        return {"name": self.name, "folder": str(self.folder), "classes": self.config["classes"],
                "test_nasa_iou": test.get("nasa_iou"), "pixel_size_um": self.config.get("pixel_size_um"),
                "license": self.rdf.get("license")}  # fmt: skip


def is_bundle(path: str | os.PathLike) -> bool:
    path = Path(path)
    return path.suffix.lower() == BUNDLE_SUFFIX and path.is_file()


def _read_archive(data: bytes, where: str | os.PathLike) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"{where}: not a readable bundle ({exc})") from None


def _written(files: dict[str, bytes], rdf: dict, folder: Path) -> Bundle:
    """The verified ``files`` as the folder ``folder`` (replacing one there, never leaving half of one)."""
    with atomic_folder(folder) as temporary:
        for file_name, content in files.items():
            (temporary / file_name).write_bytes(content)
    return Bundle(folder, rdf)


def verified(files: dict[str, bytes], where: str) -> dict:
    """The rdf of a bundle's ``files`` after checking every file against its SHA-256; refuses by file name."""
    if RDF not in files:
        raise BundleError(f"{where}: no {RDF}; not a csunet or bioimage.io bundle")
    rdf = yaml.safe_load(files[RDF]) or {}
    expected = ((rdf.get("config") or {}).get("csunet") or {}).get("files")
    if not expected:
        raise BundleError(f"{where}: a bioimage.io package, but not one csunet wrote (no config.csunet.files)")
    for file_name, digest in expected.items():
        if file_name not in files:
            raise BundleError(f"{where}: {file_name} is missing from the bundle")
        if sha256(files[file_name]) != digest:
            raise BundleError(
                f"{where}: {file_name} does not match its SHA-256 in {RDF}: the bundle was changed or damaged; "
                "get it again from whoever made it"
            )
    return rdf


def unpack(path: str | os.PathLike) -> Bundle:
    """Verify the bundle at ``path`` and unpack it into csunet's cache (one folder per bundle content); a folder
    unpacked earlier is reused, after checking its files again."""
    data = Path(path).read_bytes()
    folder = bundle_cache() / sha256(data)[:16]
    if (folder / RDF).is_file():
        return open_folder(folder)
    files = _read_archive(data, path)
    return _written(files, verified(files, str(path)), folder)


def open_folder(folder: Path) -> Bundle:
    """An unpacked bundle, its files checked again (an installed model may have been edited since)."""
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name in _listed(folder)}
    return Bundle(folder, verified(files, str(folder)))


def _listed(folder: Path) -> set[str]:
    rdf = yaml.safe_load((folder / RDF).read_text()) or {}
    return {RDF, *(((rdf.get("config") or {}).get("csunet") or {}).get("files") or {})}


def install(path: str | os.PathLike, name: str | None = None) -> Bundle:
    """Put the bundle at ``path`` into the user's model folder under ``name`` (default: its own, as an
    identifier); an installed model of that name is replaced."""
    files = _read_archive(Path(path).read_bytes(), path)
    rdf = verified(files, str(path))
    return _written(files, rdf, models_dir() / _identifier(name or rdf["name"]))


def installed() -> list[Bundle]:
    folder = models_dir()
    if not folder.is_dir():
        return []
    return [open_folder(p) for p in sorted(folder.iterdir()) if (p / RDF).is_file() and not p.name.startswith(".")]


def resolve(spec: str | os.PathLike) -> Path | None:
    """The ONNX model of a bundle file or of an installed model's name; None when ``spec`` is neither."""
    if is_bundle(spec):
        return unpack(spec).model
    if isinstance(spec, str | os.PathLike) and not Path(spec).exists():
        candidate = models_dir() / _identifier(str(spec))
        if (candidate / RDF).is_file():
            return open_folder(candidate).model
    return None

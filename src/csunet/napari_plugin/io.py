"""napari reader, writer and sample data: our masks open as Labels layers with class names and colours.

The reader takes ``NAME_mask.png|tif`` files (class indices, as `csunet predict` writes them) and folders or
``predictions.json`` files of a prediction run (each image, then its mask), and the ``NAME.ome.zarr`` folders that
`csunet predict --export ome-zarr` writes (the image and its segmentation labels, at the recorded pixel size).
Classes, colours and pixel size come from ``predictions.json`` when it is there. The writer saves a Labels layer as such a mask: class indices, with
unlabelled pixels as 255 (what training skips).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from csunet.data.dataset import sample_root
from csunet.data.description import default_colours
from csunet.data.errors import DataError
from csunet.data.io import read_array
from csunet.interchange import read_ome_zarr
from csunet.morphometry import mask_classes
from csunet.napari_plugin.labels import labels_layer_kwargs, to_class_mask, to_layer_labels
from csunet.prediction_folder import MASK_SUFFIX, PREDICTIONS_MANIFEST, read_manifest
from csunet.render import png_bytes, tiff_bytes
from csunet.utils import atomic_write_bytes

MASK_SUFFIXES = (".png", ".tif", ".tiff")
OME_ZARR = ".ome.zarr"
SAMPLE_IMAGE = "spot2_0d_0.tif"
"""The bundled Super-1 test image the sample-data entry opens."""


def _is_mask_file(path: Path) -> bool:
    return path.suffix.lower() in MASK_SUFFIXES and path.stem.endswith(MASK_SUFFIX)


def get_reader(path: str | list[str]):
    """The reader for ``path`` when it is ours, else None (napari then asks other plugins)."""
    if isinstance(path, list):
        return read_paths if all(get_reader(p) for p in path) else None
    path = Path(path)
    if path.name.endswith(OME_ZARR) and path.is_dir():
        return read_paths
    if path.is_dir():
        return read_paths if (path / PREDICTIONS_MANIFEST).is_file() else None
    if path.name == PREDICTIONS_MANIFEST:
        return read_paths
    if _is_mask_file(path):
        try:
            return read_paths if read_array(path).ndim == 2 else None  # a colour mask is not ours to read
        except DataError:
            return None
    return None


def read_paths(path: str | list[str]) -> list[tuple]:
    layers = []
    for item in [path] if isinstance(path, str) else path:
        item = Path(item)
        if item.name.endswith(OME_ZARR):
            layers += _ome_zarr_layers(item)
            continue
        folder = item if item.is_dir() else item.parent
        manifest = read_manifest(folder)
        if item.is_dir() or item.name == PREDICTIONS_MANIFEST:
            if not manifest.get("images"):
                raise DataError(f"{folder / PREDICTIONS_MANIFEST}: lists no images")
            for record in manifest["images"]:
                if "mask" not in record:
                    continue
                source = Path(record["image"])
                if source.is_file():
                    layers.append((read_array(source), {"name": source.stem, **_scale(manifest)}, "image"))
                layers.append(_mask_layer(Path(record["mask"]), manifest))
        else:
            layers.append(_mask_layer(item, manifest))
    return layers


def _ome_zarr_layers(path: Path) -> list[tuple]:
    read = read_ome_zarr(path)
    name = path.name.removesuffix(OME_ZARR)
    pixel = read["pixel_size_um"]
    image = (read["image"], {"name": name, **_scale({"pixel_size_um": pixel})}, "image")
    kwargs = labels_layer_kwargs(read["classes"], read["colours"], f"{name} segmentation", pixel)
    kwargs["metadata"]["csunet"] |= {"image": name, "pixel_size_um": pixel}
    return [image, (to_layer_labels(read["mask"]), kwargs, "labels")]


def _scale(manifest: dict) -> dict:
    pixel = manifest.get("pixel_size_um")
    return {"scale": (pixel, pixel), "units": "µm"} if pixel else {}


def _mask_layer(path: Path, manifest: dict) -> tuple:
    mask = read_array(path)
    if mask.ndim != 2:
        raise DataError(f"{path}: a colour or multi-channel image, not a class-index mask")
    classes = mask_classes([mask], manifest.get("classes"), f"{path}: its pixels")
    colours = manifest.get("colours") or default_colours(len(classes))
    name = path.name.removesuffix(path.suffix)
    kwargs = labels_layer_kwargs(classes, colours, name, manifest.get("pixel_size_um"))
    kwargs["metadata"]["csunet"]["background"] = manifest.get("background", 0)
    return to_layer_labels(mask), kwargs, "labels"


def write_labels(path: str, data: np.ndarray, meta: dict) -> list[str]:
    """A Labels layer as a class-index mask (PNG or TIFF by the name; unlabelled pixels 255)."""
    target = Path(path)
    if target.suffix.lower() not in MASK_SUFFIXES:
        target = target.with_suffix(".png")
    classes = (meta.get("metadata") or {}).get("csunet", {}).get("classes")
    labels = np.asarray(data)
    mask = to_class_mask(labels, len(classes) if classes else max(int(labels.max()), 1))
    atomic_write_bytes(target, png_bytes(mask) if target.suffix.lower() == ".png" else tiff_bytes(mask, "YX"))
    return [str(target)]


def sample_micrograph() -> list[tuple]:
    """A bundled Super-1 test micrograph (NASA, MIT licence): a Ni-based superalloy with secondary and tertiary
    precipitates."""
    path = sample_root() / "test" / SAMPLE_IMAGE
    return [(read_array(path), {"name": path.stem}, "image")]

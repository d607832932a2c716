"""How class masks appear as napari Labels layers, and the project folder that corrections are saved into.

napari's label 0 is what its eraser paints, so it must mean "unlabelled": class ``k`` is shown as label ``k + 1``
(:data:`LABEL_OFFSET`), by every widget, the reader and the writer alike. A project folder holds the corrected
pairs exactly as painted (``masks/NAME_labels.png`` with label values), and its ``dataset.yaml`` says so: index
encoding with class ``k`` at value ``k + 1`` and ``ignore: 0``, so training skips unpainted pixels.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import yaml

from csunet.data.description import DatasetDescription
from csunet.data.errors import DataError
from csunet.data.masks import IGNORE_INDEX
from csunet.render import png_bytes, tiff_bytes
from csunet.utils import atomic_write_bytes, atomic_write_text

LABEL_OFFSET = 1
"""Label value of class 0; label 0 is unlabelled."""
UNLABELLED = 0
PROJECT_DESCRIPTION = "dataset.yaml"
PROJECT_LABEL_SUFFIX = "_labels"


def to_layer_labels(mask: np.ndarray) -> np.ndarray:
    """Labels layer data of a class-index mask; :data:`IGNORE_INDEX` pixels become unlabelled."""
    labels = mask.astype(np.uint8) + LABEL_OFFSET
    labels[mask == IGNORE_INDEX] = UNLABELLED
    return labels


def to_class_mask(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """The class-index mask of Labels layer data: unlabelled pixels as :data:`IGNORE_INDEX`. A label that names
    no class is refused."""
    labels = np.asarray(labels)
    if labels.size and int(labels.max()) > num_classes:
        raise DataError(
            f"the labels layer holds label {int(labels.max())}, but labels 1-{num_classes} are the "
            f"{num_classes} classes (label 0 is unlabelled)"
        )
    mask = (labels.astype(np.int64) - LABEL_OFFSET).astype(np.uint8)
    mask[labels == UNLABELLED] = IGNORE_INDEX
    return mask


def label_colours(colours: list[tuple[int, int, int]] | list[list[int]]) -> dict[int | None, tuple]:
    """napari ``DirectLabelColormap`` colours: each class's display colour at its label, unlabelled
    transparent."""
    table: dict[int | None, tuple] = {None: (0, 0, 0, 0), UNLABELLED: (0, 0, 0, 0)}
    for index, (r, g, b) in enumerate(colours):
        table[index + LABEL_OFFSET] = (r / 255, g / 255, b / 255, 1.0)
    return table


def label_features(classes: list[str]) -> dict[str, list]:
    """Labels layer ``features``: the class name of every label, shown by napari under the cursor."""
    return {"index": list(range(len(classes) + 1)), "class": ["unlabelled", *classes]}


def labels_layer_kwargs(classes: list[str], colours, name: str, pixel_size_um: float | None = None) -> dict:
    """``add_labels`` keyword arguments: class colours and names, and the pixel size as the layer's scale."""
    from napari.utils.colormaps import DirectLabelColormap

    kwargs = {
        "name": name,
        "colormap": DirectLabelColormap(color_dict=label_colours(colours)),
        "features": label_features(classes),
        "metadata": {"csunet": {"classes": list(classes), "colours": [list(c) for c in colours]}},
    }
    if pixel_size_um:
        kwargs |= {"scale": (pixel_size_um, pixel_size_um), "units": "µm"}
    return kwargs


class TrainingProject:
    """A folder of corrected image/label pairs and the ``dataset.yaml`` that trains on them.

    The pairs both train and validate (a handful of corrected images cannot spare one for validation; the best
    checkpoint is the one that fits the corrections best). Every file is written atomically, so a crash never
    leaves a half-written pair or description.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.description_path = self.folder / PROJECT_DESCRIPTION

    @property
    def images(self) -> Path:
        return self.folder / "images"

    @property
    def masks(self) -> Path:
        return self.folder / "masks"

    def pairs(self) -> list[str]:
        """Names of the images saved so far."""
        return sorted(path.stem for path in self.images.glob("*.tif")) if self.images.is_dir() else []

    def description(
        self, classes: list[str], colours, background: int | None, pixel_size_um: float | None
    ) -> dict:
        data = {
            "name": self.folder.name,
            "classes": list(classes),
            "background": None if background is None else classes[background],
            "mask": {
                "encoding": "index",
                "values": {name: index + LABEL_OFFSET for index, name in enumerate(classes)},
                "ignore": UNLABELLED,
                "suffix": PROJECT_LABEL_SUFFIX,
            },
            "splits": {split: {"images": "images", "masks": "masks"} for split in ("train", "val")},
            "class_colours": {
                name: "#{:02x}{:02x}{:02x}".format(*colour) for name, colour in zip(classes, colours)
            },
        }
        if pixel_size_um:
            data["pixel_size_um"] = float(pixel_size_um)
        return data

    def add(
        self,
        name: str,
        image: np.ndarray,
        labels: np.ndarray,
        classes: list[str],
        colours,
        background: int | None = 0,
        pixel_size_um: float | None = None,
    ) -> Path:
        """Save (or replace) the pair ``name``: the image as the layer holds it, the labels as painted. Returns
        the description's path. A project made for other classes is refused."""
        image, labels = np.asarray(image), np.asarray(labels)
        if image.shape[:2] != labels.shape:
            raise DataError(f"image {name!r} is {image.shape[:2]} pixels but its labels are {labels.shape}")
        to_class_mask(labels, len(classes))  # refuses labels that name no class
        if not (labels != UNLABELLED).any():
            raise DataError(f"the labels of {name!r} are empty: paint at least one class before adding it")
        wanted = self.description(classes, colours, background, pixel_size_um)
        if self.description_path.is_file():
            existing = yaml.safe_load(self.description_path.read_text()) or {}
            if existing.get("classes") != wanted["classes"]:
                raise DataError(
                    f"{self.description_path}: this project trains classes {existing.get('classes')}, the "
                    f"checkpoint has {wanted['classes']}; choose another project folder"
                )
        DatasetDescription.from_dict(wanted, base=self.folder, source=self.description_path)  # validated
        atomic_write_bytes(self.images / f"{name}.tif", tiff_bytes(image))
        atomic_write_bytes(self.masks / f"{name}{PROJECT_LABEL_SUFFIX}.png", png_bytes(labels.astype(np.uint8)))
        atomic_write_text(self.description_path, yaml.safe_dump(wanted, sort_keys=False))
        return self.description_path

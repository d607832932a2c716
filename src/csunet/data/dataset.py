"""A PyTorch Dataset over any dataset description, and how to turn a name into a description."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from csunet.data.description import DatasetDescription
from csunet.data.errors import DataError, DataWarning
from csunet.data.intensity import standardise
from csunet.data.io import read_image, to_float_image
from csunet.data.masks import read_mask
from csunet.data.pairing import Pairing, pair_files
from csunet.data.scale import resample_image, resample_mask
from csunet.data.tasks import get_task, is_task_name, super_description

SAMPLE_NAME = "sample"
SAMPLE_BINARY_NAME = "sample-binary"


def sample_root() -> Path:
    """Folder of the bundled sample (NASA's Super-1 task, MIT licensed)."""
    return Path(str(resources.files("csunet") / "sample" / "super1"))


def sample_description(binary: bool = False) -> DatasetDescription:
    """The bundled Super-1 with 3 classes, or (``binary``) matrix vs precipitate as NASA's binary Super tasks."""
    return super_description(sample_root(), SAMPLE_BINARY_NAME if binary else SAMPLE_NAME, binary=binary)


DESCRIPTION_FILE = "dataset.yaml"


def load_description(spec: str | os.PathLike | DatasetDescription, data_root=None) -> DatasetDescription:
    """A description from a built-in task name, ``sample`` / ``sample-binary``, a YAML file path, or a folder that
    holds a ``dataset.yaml`` (what `csunet data init` writes)."""
    if isinstance(spec, DatasetDescription):
        return spec
    text = str(spec)
    if text in (SAMPLE_NAME, SAMPLE_BINARY_NAME):
        return sample_description(binary=text == SAMPLE_BINARY_NAME)
    if is_task_name(text):
        return get_task(text, data_root)
    path = Path(text)
    if path.is_dir():
        if not (path / DESCRIPTION_FILE).is_file():
            raise DataError(
                f"{path}: a folder without a {DESCRIPTION_FILE}; write one with `csunet data init {path}`"
            )
        path = path / DESCRIPTION_FILE
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        return DatasetDescription.load(path)
    raise DataError(f"{text!r} is neither a built-in task, 'sample', nor a dataset description file")


def pair_split(description: DatasetDescription, split: str) -> Pairing:
    folders = description.split(split)
    pairing = pair_files(folders.images, folders.masks, description.mask_suffix)
    if folders.names is None:
        return pairing
    chosen = set(folders.names)
    return Pairing([pair for pair in pairing.pairs if pair[0].name in chosen], [], [])


def load_pair(
    image_path: Path,
    mask_path: Path,
    description: DatasetDescription,
    raw_image: np.ndarray | None = None,
    raw_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(float32 image (H, W, C), uint8 class mask (H, W)), checking that their sizes agree.

    ``raw_image`` / ``raw_mask`` are the files already decoded by the caller (saves decoding them twice).
    """
    image = read_image(image_path) if raw_image is None else to_float_image(raw_image, image_path)
    mask = (
        read_mask(mask_path, description.encoding)
        if raw_mask is None
        else description.encoding.decode(raw_mask, mask_path)
    )
    if image.shape[:2] != mask.shape:
        raise DataError(
            f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image {image_path.name} "
            f"is {image.shape[1]}x{image.shape[0]}"
        )
    return image, mask


class SegmentationDataset(Dataset):
    """Image/mask pairs of one split, as (image float32 (C, H, W), mask int64 (H, W)).

    ``transform`` is an albumentations transform (called as ``transform(image=..., mask=...)``) applied to the
    float image in [0, 1] and the class mask, after the whole image's ``intensity`` standardisation
    (:mod:`csunet.data.intensity`) and the resampling of both by ``scale`` (:mod:`csunet.data.scale`; the
    transform then works in the model's pixels). Grey images are repeated to ``channels`` channels. Decoded
    files are kept in memory when ``cache`` is true (micrograph sets are small; TIFF decoding is not free).
    Unpaired files are named in one warning and skipped; an empty split is an error.
    """

    def __init__(
        self,
        description: DatasetDescription | str | os.PathLike,
        split: str,
        transform: Callable | None = None,
        channels: int = 3,
        cache: bool = True,
        data_root: str | os.PathLike | None = None,
        intensity: str = "none",
        scale: float = 1.0,
    ) -> None:
        self.description = load_description(description, data_root)
        self.intensity, self.scale = intensity, scale
        self.split = split
        self.transform = transform
        self.channels = channels
        self.cache = cache
        pairing = pair_split(self.description, split)
        message = pairing.warning(f"{self.description.name}/{split}")
        if message:
            warnings.warn(message, DataWarning, stacklevel=2)
        if not pairing.pairs:
            folders = self.description.split(split)
            raise DataError(
                f"{folders.images}: split {split!r} has no image with a matching mask in {folders.masks}"
            )
        self.pairs = pairing.pairs
        self._decoded: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    def names(self) -> list[str]:
        return [image.name for image, _ in self.pairs]

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Decoded (image (H, W, C) float32, mask (H, W) uint8) before any transform."""
        if index in self._decoded:
            return self._decoded[index]
        image, mask = load_pair(*self.pairs[index], self.description)
        image = resample_image(standardise(image, self.intensity), self.scale)
        mask = resample_mask(mask, self.scale)
        if image.shape[-1] == 1 and self.channels != 1:
            image = np.repeat(image, self.channels, axis=-1)
        elif image.shape[-1] != self.channels:
            raise DataError(
                f"{self.pairs[index][0]}: image has {image.shape[-1]} channels, expected {self.channels}"
            )
        if self.cache:
            self._decoded[index] = (image, mask)
        return image, mask

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transformed(*self.load(index))

    def transformed(self, image: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``image`` and ``mask`` through the transform, as tensors (image (C, H, W) float32, mask int64)."""
        if self.transform is not None:
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        image_t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)
        mask_t = torch.from_numpy(np.ascontiguousarray(mask).astype(np.int64))
        return image_t, mask_t

"""Lightning DataModule over any dataset description."""

from __future__ import annotations

import os

import lightning as L
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from csunet.data import IGNORE_INDEX, DataError, DatasetDescription, SegmentationDataset
from csunet.data.masks import labelled_share
from csunet.data.transforms import eval_transform
from csunet.train.augment import train_transform
from csunet.train.sampling import RANDOM_CROP, ClassShares, CropSampler
from csunet.train.validation import ValidationWindows, choose_windows

LABELLED = -2
"""The class slot of "any labelled pixel" (a sparse mask's random crop centres on one)."""


class CropsPerEpoch(Dataset):
    """Crops of the images of ``dataset`` as :class:`csunet.train.sampling.CropSampler` draws them: an item
    (image index, class) is a crop centred on a random pixel of that class in that image, or, for
    ``RANDOM_CROP``, a uniformly random crop (the dataset's transform crops it). On a sparse mask (one with
    unlabelled pixels) a random crop centres on a random labelled pixel instead: a crop of strokes covering 1 % of
    an image would otherwise mostly hold nothing to learn from. Each crop's augmentation is seeded from torch's
    generator, so a run's seed (and each loader worker's own seed) decides it."""

    def __init__(self, dataset: SegmentationDataset, length: int, tile_size: int) -> None:
        self.dataset, self.length, self.tile_size = dataset, length, tile_size
        self._class_pixels: dict[tuple[int, int], np.ndarray] = {}

    def __len__(self) -> int:
        return self.length

    def class_pixels(self, index: int, target: int, mask: np.ndarray) -> np.ndarray:
        """Flat positions of the pixels of class ``target`` (or of every labelled pixel, ``LABELLED``) in mask
        ``index``."""
        if (index, target) not in self._class_pixels:
            chosen = mask != IGNORE_INDEX if target == LABELLED else mask == target
            self._class_pixels[index, target] = np.flatnonzero(chosen).astype(np.int64)
        return self._class_pixels[index, target]

    def __getitem__(self, item: tuple[int, int]):
        index, target = item
        image, mask = self.dataset.load(index)
        if target == RANDOM_CROP and (mask == IGNORE_INDEX).any():
            target = LABELLED
        if target != RANDOM_CROP and len(self.class_pixels(index, target, mask)):
            pixels = self.class_pixels(index, target, mask)
            row, col = divmod(int(pixels[torch.randint(len(pixels), ()).item()]), mask.shape[1])
            top, left = (
                min(max(0, centre - self.tile_size // 2), max(0, size - self.tile_size))
                for centre, size in ((row, mask.shape[0]), (col, mask.shape[1]))
            )
            window = np.s_[top : top + self.tile_size, left : left + self.tile_size]
            image, mask = image[window], mask[window]
        if self.dataset.transform is not None:  # albumentations draws from its own generators: follow torch's
            self.dataset.transform.set_random_seed(int(torch.randint(2**31 - 1, ()).item()))
        return self.dataset.transformed(image, mask)


class SegmentationDataModule(L.LightningDataModule):
    def __init__(
        self,
        description: DatasetDescription,
        tile_size: int,
        preset: str,
        batch_size: int,
        crops_per_epoch: int | None = None,
        val_split: str = "val",
        workers: int | None = None,
        class_crops: float = 0.0,
        class_temperature: float = 0.0,
        intensity: str = "none",
        photometric: str = "mild",
        val_tiles: int = 0,
        val_overlap: float = 0.25,
        scale: float = 1.0,
    ) -> None:
        """``description`` has a ``train`` split (a single folder pair is divided first: ``csunet.data.hold_out``)."""
        super().__init__()
        self.description = description
        self.tile_size, self.preset, self.batch_size = tile_size, preset, batch_size
        self.crops_per_epoch, self.val_split, self.workers = crops_per_epoch, val_split, workers
        self.class_crops, self.class_temperature = class_crops, class_temperature
        self.intensity, self.photometric = intensity, photometric
        self.val_tiles, self.val_overlap, self.scale = val_tiles, val_overlap, scale
        self.train_set: Dataset | None = None
        self.train_images: SegmentationDataset | None = None
        self.val_set: Dataset | None = None

    def _datasets(self) -> tuple[Dataset, Dataset]:
        train_tf = train_transform(self.preset, self.tile_size, self.photometric)
        val_tf = eval_transform(self.preset, self.scale)
        splits = self.description.splits
        settings = {"intensity": self.intensity, "scale": self.scale}
        if "train" in splits:
            train = SegmentationDataset(self.description, "train", train_tf, **settings)
            if self.val_split not in splits:
                raise DataError(
                    f"{self.description.name}: no validation split {self.val_split!r}; it has {sorted(splits)}"
                )
            return train, SegmentationDataset(self.description, self.val_split, val_tf, **settings)
        raise DataError(f"{self.description.name}: needs a 'train' split; it has {sorted(splits)}")

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            train, self.val_set = self._datasets()
            if self.val_tiles:
                masks = [self.val_set[i][1].numpy() for i in range(len(self.val_set))]
                windows = choose_windows(
                    masks, self.tile_size, self.val_overlap, self.val_tiles, self.description.background
                )
                self.val_set = ValidationWindows(self.val_set, windows)
            self.train_images = train
            length = self.crops_per_epoch or len(train)
            self.train_set = CropsPerEpoch(train, length, self.tile_size)
            shares = (
                ClassShares.from_masks(
                    self.train_masks(),
                    self.description.classes,
                    self.description.background,
                    self.class_temperature,
                )
                if self.class_crops
                else None
            )
            self.crop_sampler = CropSampler(len(train), length, self.class_crops, shares)

    def train_masks(self) -> list[np.ndarray]:
        """Decoded masks of the training images (for class weights and shares)."""
        if self.train_images is None:
            self.setup()
        return [self.train_images.load(i)[1] for i in range(len(self.train_images))]

    def labelled_shares(self) -> tuple[float, float]:
        """Share of the pixels labelled in the training and in the validation images (1.0: dense masks)."""
        if self.train_images is None:
            self.setup()
        validation = getattr(self.val_set, "dataset", self.val_set)  # whole images under validation windows

        def share(dataset: SegmentationDataset) -> float:
            return labelled_share(dataset.load(i)[1] for i in range(len(dataset)))

        return share(self.train_images), share(validation)

    def _workers(self) -> int:
        if self.workers is not None:
            return self.workers
        on_gpu = self.trainer is not None and self.trainer.accelerator.__class__.__name__ != "CPUAccelerator"
        return min(8, (os.cpu_count() or 1)) if on_gpu else 0

    def _loader(self, dataset: Dataset, batch_size: int, sampler=None, drop_last: bool = False) -> DataLoader:
        workers = self._workers()
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            drop_last=drop_last and len(dataset) >= batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, self.crop_sampler, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        # every image exactly once over all processes (Lightning's default sampler would repeat some to even out
        # the processes, counting them twice in the metrics); batch 1 because whole images may differ in size
        sampler = None
        if self.trainer is not None and self.trainer.world_size > 1:
            sampler = UnrepeatedDistributedSampler(
                self.val_set, num_replicas=self.trainer.world_size, rank=self.trainer.global_rank, shuffle=False
            )
        return self._loader(self.val_set, 1, sampler)

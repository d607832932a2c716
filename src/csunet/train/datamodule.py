"""Lightning DataModule over any dataset description."""

from __future__ import annotations

import os

import lightning as L
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from csunet.data import DataError, DatasetDescription, SegmentationDataset
from csunet.data.masks import IGNORE_INDEX
from csunet.data.transforms import eval_transform
from csunet.train.augment import train_transform


class CropsPerEpoch(Dataset):
    """Presents ``length`` crops of the images of ``dataset``, taken cyclically: an epoch of random crops need not
    equal one pass over a dozen images.

    A share ``class_crops`` of them is centred on a pixel of one class other than ``background``, the class drawn
    uniformly among those in the image (nnU-Net's foreground oversampling, per class): small crops of large
    images otherwise rarely hold a thin layer or a scarce phase, and the model learns to never predict it. The rest
    are uniformly random crops (the dataset's transform crops them)."""

    def __init__(
        self,
        dataset: SegmentationDataset,
        length: int,
        tile_size: int,
        class_crops: float = 0.0,
        background: int | None = None,
    ) -> None:
        self.dataset, self.length, self.tile_size = dataset, length, tile_size
        self.class_crops, self.background = class_crops, background
        self._class_pixels: dict[int, dict[int, np.ndarray]] = {}

    def __len__(self) -> int:
        return self.length

    def class_pixels(self, index: int, mask: np.ndarray) -> dict[int, np.ndarray]:
        """Flat positions of each class's pixels in mask ``index``, background and unlabelled pixels left out."""
        if index not in self._class_pixels:
            found = {}
            for value in np.unique(mask):
                if value != IGNORE_INDEX and value != self.background:
                    found[int(value)] = np.flatnonzero(mask == value).astype(np.int64)
            self._class_pixels[index] = found
        return self._class_pixels[index]

    def __getitem__(self, index: int):
        index %= len(self.dataset)
        image, mask = self.dataset.load(index)
        if self.class_crops and torch.rand(()).item() < self.class_crops:
            pixels = self.class_pixels(index, mask)
            if pixels:
                chosen = pixels[sorted(pixels)[torch.randint(len(pixels), ()).item()]]
                row, col = divmod(int(chosen[torch.randint(len(chosen), ()).item()]), mask.shape[1])
                top, left = (
                    min(max(0, centre - self.tile_size // 2), max(0, size - self.tile_size))
                    for centre, size in ((row, mask.shape[0]), (col, mask.shape[1]))
                )
                window = np.s_[top : top + self.tile_size, left : left + self.tile_size]
                image, mask = image[window], mask[window]
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
    ) -> None:
        """``description`` has a ``train`` split (a single folder pair is divided first: ``csunet.data.hold_out``)."""
        super().__init__()
        self.description = description
        self.tile_size, self.preset, self.batch_size = tile_size, preset, batch_size
        self.crops_per_epoch, self.val_split, self.workers = crops_per_epoch, val_split, workers
        self.class_crops = class_crops
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    def _datasets(self) -> tuple[Dataset, Dataset]:
        train_tf, val_tf = train_transform(self.preset, self.tile_size), eval_transform(self.preset)
        splits = self.description.splits
        if "train" in splits:
            train = SegmentationDataset(self.description, "train", train_tf)
            if self.val_split not in splits:
                raise DataError(
                    f"{self.description.name}: no validation split {self.val_split!r}; it has {sorted(splits)}"
                )
            return train, SegmentationDataset(self.description, self.val_split, val_tf)
        raise DataError(f"{self.description.name}: needs a 'train' split; it has {sorted(splits)}")

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            train, self.val_set = self._datasets()
            self.train_images = train
            self.train_set = CropsPerEpoch(
                train,
                self.crops_per_epoch or len(train),
                self.tile_size,
                self.class_crops,
                self.description.background,
            )

    def train_masks(self) -> list[np.ndarray]:
        """Decoded masks of the training images (for class weights)."""
        self.setup()
        return [self.train_images.load(i)[1] for i in range(len(self.train_images))]

    def _workers(self) -> int:
        if self.workers is not None:
            return self.workers
        on_gpu = self.trainer is not None and self.trainer.accelerator.__class__.__name__ != "CPUAccelerator"
        return min(8, (os.cpu_count() or 1)) if on_gpu else 0

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool, sampler=None) -> DataLoader:
        workers = self._workers()
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle if sampler is None else False,
            sampler=sampler,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            drop_last=shuffle and len(dataset) >= batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        # every image exactly once over all processes (Lightning's default sampler would repeat some to even out
        # the processes, counting them twice in the metrics); batch 1 because whole images may differ in size
        sampler = None
        if self.trainer is not None and self.trainer.world_size > 1:
            sampler = UnrepeatedDistributedSampler(
                self.val_set, num_replicas=self.trainer.world_size, rank=self.trainer.global_rank, shuffle=False
            )
        return self._loader(self.val_set, 1, shuffle=False, sampler=sampler)

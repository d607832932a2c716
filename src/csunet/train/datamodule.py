"""Lightning DataModule over any dataset description."""

from __future__ import annotations

import os

import lightning as L
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from csunet.data import DataError, DatasetDescription, SegmentationDataset
from csunet.data.transforms import eval_transform
from csunet.train.augment import train_transform


class CropsPerEpoch(Dataset):
    """Presents ``length`` items drawn cyclically from ``dataset``: an epoch of random crops need not equal one
    pass over a dozen images."""

    def __init__(self, dataset: Dataset, length: int) -> None:
        self.dataset, self.length = dataset, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        return self.dataset[index % len(self.dataset)]


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
    ) -> None:
        """``description`` has a ``train`` split (a single folder pair is divided first: ``csunet.data.hold_out``)."""
        super().__init__()
        self.description = description
        self.tile_size, self.preset, self.batch_size = tile_size, preset, batch_size
        self.crops_per_epoch, self.val_split, self.workers = crops_per_epoch, val_split, workers
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
            self.train_set = CropsPerEpoch(train, self.crops_per_epoch or len(train))

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

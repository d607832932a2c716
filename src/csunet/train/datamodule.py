"""Lightning DataModule over any dataset description."""

from __future__ import annotations

import os

import lightning as L
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, Subset

from csunet.data import DataError, DatasetDescription, SegmentationDataset
from csunet.train.augment import eval_transform, train_transform

SINGLE_SPLIT = "all"


class CropsPerEpoch(Dataset):
    """Presents ``length`` items drawn cyclically from ``dataset``: an epoch of random crops need not equal one
    pass over a dozen images."""

    def __init__(self, dataset: Dataset, length: int) -> None:
        self.dataset, self.length = dataset, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        return self.dataset[index % len(self.dataset)]


def holdout_indices(count: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) indices of a single-split dataset; at least one image on each side."""
    if count < 2:
        raise DataError(f"a single split needs at least 2 images to hold one out for validation, it has {count}")
    order = np.random.default_rng(seed).permutation(count).tolist()
    held = min(count - 1, max(1, round(count * fraction)))
    return sorted(order[held:]), sorted(order[:held])


class SegmentationDataModule(L.LightningDataModule):
    def __init__(
        self,
        description: DatasetDescription,
        tile_size: int,
        preset: str,
        batch_size: int,
        crops_per_epoch: int | None = None,
        val_split: str = "val",
        val_fraction: float = 0.2,
        seed: int = 0,
        workers: int | None = None,
    ) -> None:
        super().__init__()
        self.description = description
        self.tile_size, self.preset, self.batch_size = tile_size, preset, batch_size
        self.crops_per_epoch, self.val_split, self.val_fraction, self.seed = (
            crops_per_epoch,
            val_split,
            val_fraction,
            seed,
        )
        self.workers = workers
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
        if SINGLE_SPLIT in splits:
            train = SegmentationDataset(self.description, SINGLE_SPLIT, train_tf)
            val = SegmentationDataset(self.description, SINGLE_SPLIT, val_tf)
            train_idx, val_idx = holdout_indices(len(train), self.val_fraction, self.seed)
            return Subset(train, train_idx), Subset(val, val_idx)
        raise DataError(
            f"{self.description.name}: needs a 'train' split (or one folder pair); it has {sorted(splits)}"
        )

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            train, self.val_set = self._datasets()
            self.train_images = train
            self.train_set = CropsPerEpoch(train, self.crops_per_epoch or len(train))

    def train_masks(self) -> list[np.ndarray]:
        """Decoded masks of the training images (for class weights)."""
        self.setup()
        base = self.train_images
        if isinstance(base, Subset):
            return [base.dataset.load(i)[1] for i in base.indices]
        return [base.load(i)[1] for i in range(len(base))]

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

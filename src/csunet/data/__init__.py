"""Micrograph data: reading images and masks, dataset descriptions, NASA's benchmark tasks, a Dataset."""

from csunet.data.dataset import (
    SegmentationDataset,
    load_description,
    load_pair,
    pair_split,
    sample_description,
    sample_root,
)
from csunet.data.description import DatasetDescription, SplitFolders
from csunet.data.errors import DataError, DataWarning
from csunet.data.info import dataset_info, init_description, write_description
from csunet.data.io import read_array, read_image
from csunet.data.masks import IGNORE_INDEX, ColourEncoding, IndexEncoding, read_mask
from csunet.data.pairing import pair_files
from csunet.data.tasks import get_task, list_tasks

__all__ = [
    "IGNORE_INDEX",
    "ColourEncoding",
    "DataError",
    "DataWarning",
    "DatasetDescription",
    "IndexEncoding",
    "SegmentationDataset",
    "SplitFolders",
    "dataset_info",
    "get_task",
    "init_description",
    "list_tasks",
    "load_description",
    "load_pair",
    "pair_files",
    "pair_split",
    "read_array",
    "read_image",
    "read_mask",
    "sample_description",
    "sample_root",
    "write_description",
]

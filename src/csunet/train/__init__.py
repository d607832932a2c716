"""Training: the paper's recipe and a fast one on Lightning (losses, augmentation, schedules, run folders).

Names are imported when first used, so that reading the configuration (the command line does, to build its
options) does not load Lightning.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "csunet.train.config",
    "SegmentationModule": "csunet.train.module",
    "TrainingDiverged": "csunet.train.module",
    "resume": "csunet.train.run",
    "train": "csunet.train.run",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'csunet.train' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)

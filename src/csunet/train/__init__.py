"""Training: the paper's recipe on Lightning (losses, augmentation, schedule, run folders)."""

from csunet.train.config import TrainConfig
from csunet.train.module import SegmentationModule, TrainingDiverged
from csunet.train.run import resume, train

__all__ = ["SegmentationModule", "TrainConfig", "TrainingDiverged", "resume", "train"]

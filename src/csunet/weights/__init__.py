"""Pretrained weights: where they come from, how they are cached, and loading with a report.

Swin-T: Microsoft's or timm's checkpoints (ImageNet, or MicroLite from `csunet pretrain`). CNN encoders:
ImageNet through segmentation_models_pytorch, MicroNet and ImageNet->MicroNet from NASA. Every load returns a
:class:`LoadReport`; a load that leaves an encoder stage fresh is an error.
"""

from csunet.weights.files import WeightsError, read_state_dict
from csunet.weights.load import (
    LoadReport,
    cnn_filter,
    inspect_file,
    load_cnn,
    load_pretrained,
    load_swin,
    swin_filter,
)
from csunet.weights.store import fetch, import_file, list_weights, resolve

__all__ = [
    "LoadReport",
    "WeightsError",
    "cnn_filter",
    "fetch",
    "import_file",
    "inspect_file",
    "list_weights",
    "load_cnn",
    "load_pretrained",
    "load_swin",
    "read_state_dict",
    "resolve",
    "swin_filter",
]

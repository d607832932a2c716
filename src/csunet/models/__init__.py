"""Segmentation architectures, created by name through a small registry."""

from csunet.models import cs_unet as _cs_unet  # noqa: F401  (registers cs_unet)
from csunet.models import hiformer as _hiformer  # noqa: F401  (registers hiformer)
from csunet.models import swin_unet as _swin_unet  # noqa: F401  (registers swin_unet)
from csunet.models import transdeeplab as _transdeeplab  # noqa: F401  (registers transdeeplab)
from csunet.models import unet as _unet  # noqa: F401  (registers unet, unet_plusplus)
from csunet.models.cs_unet import CSUNet
from csunet.models.registry import (
    Capabilities,
    count_parameters,
    create_model,
    list_models,
    model_entry,
    register_model,
)
from csunet.models.swin import DEPTH_PRESETS, ResMLP, SwinEncoder
from csunet.models.swin_unet import SwinUNet

__all__ = [
    "Capabilities",
    "DEPTH_PRESETS",
    "CSUNet",
    "ResMLP",
    "SwinEncoder",
    "SwinUNet",
    "count_parameters",
    "create_model",
    "list_models",
    "model_entry",
    "register_model",
]

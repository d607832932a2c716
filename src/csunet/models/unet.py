"""UNet and UNet++ (the paper's CNN baselines, NASA's benchmark models) from segmentation_models_pytorch.

Any smp encoder name works, including all of NASA's MicroNet encoders; pretrained encoder weights load through
``csunet.weights`` like CS-UNet's CNN branch. Inputs of any size divisible by 32.
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
from torch import nn

from csunet.models.encoders import check_cnn_encoder
from csunet.models.registry import Capabilities, register_model

SMP_PARTS = Capabilities(cnn="encoder")


def _smp_model(kind: type, num_classes: int, encoder: str) -> nn.Module:
    model = kind(encoder_name=check_cnn_encoder(encoder), encoder_weights=None, classes=num_classes)
    model.encoder_name = encoder
    return model


@register_model("unet", SMP_PARTS)
def unet(num_classes: int = 3, encoder: str = "resnet50") -> nn.Module:
    """UNet (smp) with any smp CNN encoder."""
    return _smp_model(smp.Unet, num_classes, encoder)


@register_model("unet_plusplus", SMP_PARTS)
def unet_plusplus(num_classes: int = 3, encoder: str = "resnet50") -> nn.Module:
    """UNet++ (smp) with any smp CNN encoder: NASA's MicroNet benchmark model."""
    return _smp_model(smp.UnetPlusPlus, num_classes, encoder)

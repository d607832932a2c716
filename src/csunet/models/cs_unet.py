"""CS-UNet (Alrfou, Zhao & Kordijazi 2023): Swin-T encoder with ResMLP plus any smp CNN encoder, fused at the
bottleneck and at every decoder level."""

from __future__ import annotations

import segmentation_models_pytorch as smp

from csunet.models.registry import register_model
from csunet.models.swin import EMBED_DIM
from csunet.models.swin_unet import SwinUNet


def build_cnn_encoder(name: str, in_channels: int = 3, depth: int = 5):
    """An smp encoder (``depth`` stride-2 stages) without pretrained weights (weights load through csunet.weights)."""
    try:
        return smp.encoders.get_encoder(name, in_channels=in_channels, depth=depth, weights=None)
    except KeyError:
        raise ValueError(f"unknown CNN encoder {name!r}; see segmentation_models_pytorch's encoder list") from None


@register_model(
    "cs_unet",
    presets={
        "paper-512": {"img_size": 512, "window_size": 8},
        "paper-224": {"img_size": 224, "window_size": 7},
    },
)
class CSUNet(SwinUNet):
    """CS-UNet: Swin-T (ResMLP) + smp CNN encoder, fused at the bottleneck and every skip.

    ``encoder`` is the CNN branch's segmentation_models_pytorch encoder name.
    """

    def __init__(
        self,
        num_classes: int = 3,
        encoder: str = "resnet50",
        img_size: int = 512,
        window_size: int = 8,
        depths: str | tuple[int, ...] = "intermediate",
        drop_path_rate: float = 0.2,
        embed_dim: int = EMBED_DIM,
    ) -> None:
        cnn = build_cnn_encoder(encoder)
        cnn_dims = tuple(cnn.out_channels[2:6])
        super().__init__(
            num_classes, img_size, window_size, depths, drop_path_rate, True, cnn, cnn_dims, embed_dim
        )
        self.encoder_name = encoder

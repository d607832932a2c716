"""CS-UNet (Alrfou, Zhao & Kordijazi 2023): Swin-T encoder with ResMLP plus any smp CNN encoder, fused at the
bottleneck and at every decoder level."""

from __future__ import annotations

from csunet.models.encoders import build_cnn_encoder, pyramid_widths
from csunet.models.registry import Capabilities, register_model
from csunet.models.swin import EMBED_DIM
from csunet.models.swin_unet import SwinUNetAssembly, swin_parts


@register_model(
    "cs_unet",
    Capabilities(cnn="cnn", swin="swin", decoder_mirrors_swin=True),
    presets={
        "paper-512": {"img_size": 512, "window_size": 8},
        "paper-224": {"img_size": 224, "window_size": 7},
    },
)
class CSUNet(SwinUNetAssembly):
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
        parts = swin_parts(num_classes=num_classes, img_size=img_size, window_size=window_size, depths=depths,
                           drop_path_rate=drop_path_rate, embed_dim=embed_dim, res_mlp=True,
                           cnn_widths=pyramid_widths(cnn))  # fmt: skip
        super().__init__(swin=parts["swin"], cnn=cnn, decoder=parts["decoder"])
        self.encoder_name = encoder

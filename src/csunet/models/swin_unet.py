"""Swin-Unet (Cao et al. 2021) and the assembly it shares with CS-UNet: a Swin encoder, an optional CNN encoder
and a decoder that fuses the CNN's features when there are any."""

from __future__ import annotations

import torch
from torch import nn

from csunet.models.encoders import pyramid_grids
from csunet.models.registry import Capabilities, register_model
from csunet.models.swin import EMBED_DIM, SwinEncoder, SwinUNetDecoder, check_square_input, resolve_depths


def init_like_swin(module: nn.Module) -> None:
    """Swin's initialisation, which the CS-UNet authors apply to their whole network after building it: every
    Linear a truncated normal of std 0.02 with zero bias, every LayerNorm weight 1 and bias 0. PyTorch's default
    would start the fresh layers (ResMLP's fc3, fusion projections, patch expansions) about three times larger."""
    for child in module.modules():
        if isinstance(child, nn.Linear):
            nn.init.trunc_normal_(child.weight, std=0.02)
            if child.bias is not None:
                nn.init.zeros_(child.bias)
        elif isinstance(child, nn.LayerNorm):
            nn.init.ones_(child.weight)
            nn.init.zeros_(child.bias)


class SwinUNetAssembly(nn.Module):
    """Swin encoder -> (with ``cnn``: CNN pyramid fused at the bottleneck and every skip) -> decoder -> logits.

    Submodule names (``swin``, ``cnn``, ``decoder``) are the state-dict prefixes of every checkpoint written so far.
    The Swin side (encoder, ResMLP, fusion, decoder) starts as the authors' does (:func:`init_like_swin`); the CNN
    keeps its own initialisation. Pretrained weights overwrite what they cover.
    """

    def __init__(self, *, swin: SwinEncoder, decoder: SwinUNetDecoder, cnn: nn.Module | None = None) -> None:
        super().__init__()
        self.swin = swin
        self.cnn = cnn
        self.decoder = decoder
        self.img_size = swin.img_size
        init_like_swin(self.swin)
        init_like_swin(self.decoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_square_input(x, self.img_size)
        bottleneck, skips = self.swin(x)
        return self.decoder(bottleneck, skips, None if self.cnn is None else pyramid_grids(self.cnn, x))


def swin_parts(
    *,
    num_classes: int,
    img_size: int,
    window_size: int,
    depths: str | tuple[int, ...],
    drop_path_rate: float,
    embed_dim: int,
    res_mlp: bool,
    cnn_widths: tuple[int, int, int, int] | None = None,
) -> dict[str, nn.Module]:
    """The Swin encoder and a decoder mirroring it (fusing CNN features of ``cnn_widths`` when given)."""
    depths = resolve_depths(depths)
    swin = SwinEncoder(img_size, window_size, depths, drop_path_rate=drop_path_rate, res_mlp=res_mlp,
                       embed_dim=embed_dim)  # fmt: skip
    decoder = SwinUNetDecoder(num_classes, img_size, window_size, depths, swin.drop_path_rates,
                              cnn_widths or (0, 0, 0, 0), res_mlp, embed_dim)  # fmt: skip
    return {"swin": swin, "decoder": decoder}


@register_model(
    "swin_unet",
    Capabilities(swin="swin", decoder_mirrors_swin=True),
    presets={"paper": {"img_size": 224, "window_size": 7, "depths": "intermediate"}},
)
class SwinUNet(SwinUNetAssembly):
    """Swin-Unet: Swin-T encoder and mirrored Swin decoder, plain MLP, no CNN branch."""

    def __init__(
        self,
        num_classes: int = 9,
        *,
        img_size: int = 224,
        window_size: int = 7,
        depths: str | tuple[int, ...] = "intermediate",
        drop_path_rate: float = 0.2,
        embed_dim: int = EMBED_DIM,
    ) -> None:
        super().__init__(**swin_parts(num_classes=num_classes, img_size=img_size, window_size=window_size,
                                      depths=depths, drop_path_rate=drop_path_rate, embed_dim=embed_dim,
                                      res_mlp=False))  # fmt: skip

"""Swin-Unet (Cao et al. 2021): the Swin encoder/decoder with plain MLPs and no CNN branch."""

from __future__ import annotations

import torch
from torch import nn

from csunet.models.registry import register_model
from csunet.models.swin import EMBED_DIM, SwinEncoder, SwinUNetDecoder, check_square_input, resolve_depths


class SwinUNet(nn.Module):
    """Swin U-Net; with a ``cnn`` (an smp encoder) it is CS-UNet's skeleton, which subclasses it."""

    decoder_mirrors_swin = True
    """Pretrained Swin weights also initialise the decoder's Swin stages (Swin-Unet's scheme)."""

    def __init__(
        self,
        num_classes: int,
        img_size: int = 224,
        window_size: int = 7,
        depths: str | tuple[int, ...] = "intermediate",
        drop_path_rate: float = 0.2,
        res_mlp: bool = False,
        cnn: nn.Module | None = None,
        cnn_dims: tuple[int, int, int, int] = (0, 0, 0, 0),
        embed_dim: int = EMBED_DIM,
    ) -> None:
        super().__init__()
        depths = resolve_depths(depths)
        self.num_classes, self.img_size = num_classes, img_size
        self.swin = SwinEncoder(
            img_size, window_size, depths, drop_path_rate=drop_path_rate, res_mlp=res_mlp, embed_dim=embed_dim
        )
        self.cnn = cnn
        self.decoder = SwinUNetDecoder(
            num_classes, img_size, window_size, depths, self.swin.drop_path_rates, cnn_dims, res_mlp, embed_dim
        )

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        return check_square_input(x, self.img_size)

    def cnn_features(self, x: torch.Tensor) -> list[torch.Tensor] | None:
        if self.cnn is None:
            return None
        # smp encoders return [input, /2, /4, /8, /16, /32]; CS-UNet uses /4 .. /32 as channels-last token grids
        return [f.permute(0, 2, 3, 1) for f in self.cnn(x)[2:6]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_input(x)
        bottleneck, skips = self.swin(x)
        return self.decoder(bottleneck, skips, self.cnn_features(x))


@register_model("swin_unet", presets={"paper": {"img_size": 224, "window_size": 7, "depths": "intermediate"}})
def swin_unet(
    num_classes: int = 9,
    img_size: int = 224,
    window_size: int = 7,
    depths: str | tuple[int, ...] = "intermediate",
    drop_path_rate: float = 0.2,
    embed_dim: int = EMBED_DIM,
) -> SwinUNet:
    """Swin-Unet: Swin-T encoder and mirrored Swin decoder, plain MLP, no CNN branch."""
    return SwinUNet(num_classes, img_size, window_size, depths, drop_path_rate, res_mlp=False, embed_dim=embed_dim)

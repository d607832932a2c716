"""HiFormer (Heidari et al., WACV 2023): a ResNet and Swin-T stages in one pyramid, two token streams (1/4 and 1/16)
exchanging class tokens by cross-attention (Double-Level Fusion), and a small convolutional decoder.

Follows the paper rather than the authors' code, which re-initialises the Swin weights after loading them and
discards the per-branch transformer blocks' outputs (so those blocks never learn). Here the Swin stages keep the
weights loaded into them and the DLF is timm's CrossViT ``MultiScaleBlock``, whose branch blocks feed the fusion.
With a single DLF block the fused class tokens would then still be dropped before the decoder, leaving the
cross-attention without any effect on the output; each level's fused class token is therefore added to its patch
tokens. The parameter count equals the authors' models (no fix adds or removes a tensor).
"""

from __future__ import annotations

import torch
from timm.models.crossvit import MultiScaleBlock
from torch import nn

from csunet.errors import SettingsError
from csunet.models.encoders import build_cnn_encoder
from csunet.models.registry import Capabilities, register_model
from csunet.models.swin import check_square_input, swin_stages

VARIANTS = {
    "s": {"encoder": "resnet34", "dlf_depth": (1, 1), "heads": (3, 3), "mlp_ratio": (1.0, 1.0, 1.0)},
    "b": {"encoder": "resnet50", "dlf_depth": (1, 2), "heads": (6, 12), "mlp_ratio": (2.0, 2.0, 1.0)},
    "l": {"encoder": "resnet34", "dlf_depth": (1, 4), "heads": (6, 6), "mlp_ratio": (4.0, 4.0, 1.0)},
}
SWIN_DEPTHS, SWIN_HEADS, DIMS = (2, 2, 6), (3, 6, 12), (96, 192, 384)


def cnn_to_stride16(name: str) -> nn.Module:
    """An smp encoder up to stride 16 (HiFormer uses ResNet stages 1-3); the unused last stage is removed."""
    encoder = build_cnn_encoder(name, depth=4)
    if hasattr(encoder, "layer4"):
        del encoder.layer4
    return encoder


def conv_gn_relu(in_channels: int, out_channels: int, upsample: bool) -> list[nn.Module]:
    layers = [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.GroupNorm(32, out_channels),
        nn.ReLU(),
    ]
    return layers + [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)] if upsample else layers


class HiFormer(nn.Module):
    def __init__(
        self,
        num_classes: int = 9,
        variant: str = "b",
        img_size: int = 224,
        window_size: int = 7,
        encoder: str | None = None,
        drop_path_rate: float = 0.1,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise SettingsError(f"unknown HiFormer variant {variant!r}; choose from {', '.join(VARIANTS)}")
        config = VARIANTS[variant]
        self.img_size, self.variant = img_size, variant
        self.encoder_name = encoder or config["encoder"]
        self.cnn = cnn_to_stride16(self.encoder_name)
        self.swin = swin_stages(img_size, window_size, SWIN_DEPTHS, SWIN_HEADS, drop_path_rate, patch_embed=False)
        widths = self.cnn.out_channels[2:5]
        self.cnn_proj = nn.ModuleList(nn.Conv2d(c, d, kernel_size=1) for c, d in zip(widths, DIMS))
        self.norm_fine, self.norm_coarse = nn.LayerNorm(DIMS[0]), nn.LayerNorm(DIMS[2])
        tokens = ((img_size // 4) ** 2, (img_size // 16) ** 2)
        dims = (DIMS[0], DIMS[2])
        self.pos_embed = nn.ParameterList(nn.Parameter(torch.zeros(1, 1 + n, d)) for n, d in zip(tokens, dims))
        for embedding in self.pos_embed:
            nn.init.trunc_normal_(embedding, std=0.02)
        self.dlf = MultiScaleBlock(
            dim=dims, patches=tokens, depth=(*config["dlf_depth"], 0), num_heads=config["heads"],
            mlp_ratio=config["mlp_ratio"], qkv_bias=True, drop_path=[0.0] * (max(config["dlf_depth"]) + 1),
        )  # fmt: skip
        self.dlf_norm = nn.ModuleList(nn.LayerNorm(d) for d in dims)
        self.decode_fine = nn.Sequential(*conv_gn_relu(DIMS[0], 128, upsample=False))
        self.decode_coarse = nn.Sequential(*conv_gn_relu(DIMS[2], 128, True), *conv_gn_relu(128, 128, True))
        self.head = nn.Sequential(
            nn.Conv2d(128, 16, kernel_size=1),
            nn.ReLU(),
            nn.Upsample(scale_factor=4, mode="bilinear", align_corners=False),
            nn.Conv2d(16, num_classes, kernel_size=3, padding=1),
        )

    def _project(self, index: int, feature: torch.Tensor) -> torch.Tensor:
        return self.cnn_proj[index](feature).permute(0, 2, 3, 1)  # NHWC token grid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_square_input(x, self.img_size)
        features = self.cnn(x)  # [input, /2, /4, /8, /16]
        layers = self.swin.layers  # timm layout: layers[i>0] start with the patch merging
        fine_grid = self._project(0, features[2])
        fine_grid = fine_grid + layers[0](fine_grid)
        mid = self._project(1, features[3]) + layers[1](fine_grid)
        coarse_grid = self._project(2, features[4]) + layers[2](mid)
        streams = []
        for grid, norm, embedding in zip(
            (fine_grid, coarse_grid), (self.norm_fine, self.norm_coarse), self.pos_embed
        ):
            tokens = grid.flatten(1, 2)
            cls = norm(tokens).mean(dim=1, keepdim=True)
            streams.append(torch.cat([cls, tokens], dim=1) + embedding)
        streams = [norm(s) for norm, s in zip(self.dlf_norm, self.dlf(streams))]
        maps = []
        for stream, grid in zip(streams, (fine_grid, coarse_grid)):
            b, h, w, c = grid.shape
            # the fused class token carries the other level's information: added to every patch token it
            # reaches the decoder (dropping it, as the authors' decoder does, leaves the fusion without effect)
            patches = stream[:, 1:] + stream[:, :1]
            maps.append(patches.transpose(1, 2).reshape(b, c, h, w))
        return self.head(self.decode_fine(maps[0]) + self.decode_coarse(maps[1]))


@register_model(
    "hiformer",
    Capabilities(cnn="cnn", swin="swin"),
    presets={f"{v}-224": {"variant": v, "img_size": 224, "window_size": 7} for v in VARIANTS}
    | {f"{v}-512": {"variant": v, "img_size": 512, "window_size": 8} for v in VARIANTS},
)
def hiformer(
    num_classes: int = 3,
    variant: str = "b",
    img_size: int = 512,
    window_size: int = 8,
    encoder: str | None = None,
    drop_path_rate: float = 0.1,
) -> HiFormer:
    """HiFormer S/B/L: ResNet + Swin-T pyramid with double-level cross-attention fusion (paper, not its bugs)."""
    return HiFormer(num_classes, variant, img_size, window_size, encoder, drop_path_rate)

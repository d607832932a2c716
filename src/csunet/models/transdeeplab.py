"""TransDeepLab (Azad et al. 2022): DeepLabv3+ rebuilt from Swin blocks.

Swin-T stages 1-3 ([2, 2, 6] blocks) give a low-level (1/4) and a high-level (1/16) feature; a Swin spatial pyramid
runs parallel Swin stages with different window sizes over the high-level grid (a window covering the whole grid is
global attention), concatenates them, weighs channels and positions with CBAM-style attention and projects to 96
channels; the decoder upsamples it with Swin stages and patch expansion to 1/4, concatenates the low-level feature,
runs a 6-block Swin stage, expands to full resolution and classifies with a 1x1 convolution.

``levels`` (1-4) is the number of pyramid branches; they take the largest window sizes that tile the high-level
grid (at 224 input the grid is 14: 14, 7, 2, 1 as in the authors' 1-4 level configurations).
"""

from __future__ import annotations

import torch
from timm.models.swin_transformer import SwinTransformerStage
from torch import nn

from csunet.errors import SettingsError
from csunet.models.registry import Capabilities, register_model
from csunet.models.swin import PatchExpand, check_square_input, swin_stages

ENCODER_DEPTHS, ENCODER_HEADS = (2, 2, 6), (3, 6, 12)
LOW_DIM, HIGH_DIM = 96, 384


def pyramid_windows(grid: int, levels: int) -> list[int]:
    """The ``levels`` largest window sizes that divide ``grid``, largest first."""
    divisors = [w for w in range(grid, 0, -1) if grid % w == 0]
    if not 1 <= levels <= len(divisors):
        raise SettingsError(f"a {grid}x{grid} grid allows 1..{len(divisors)} pyramid levels, not {levels}")
    return divisors[:levels]


def swin_stage(dim: int, grid: int, depth: int, heads: int, window: int, drop_path: float) -> SwinTransformerStage:
    return SwinTransformerStage(
        dim=dim, out_dim=dim, input_resolution=(grid, grid), depth=depth, downsample=False, num_heads=heads,
        window_size=window, mlp_ratio=4.0, qkv_bias=True, drop_path=drop_path,
    )  # fmt: skip


class ChannelSpatialAttention(nn.Module):
    """CBAM (Woo et al. 2018) on a token grid: channel gate from max- and mean-pooled descriptors through a shared
    bottleneck, then a spatial gate from per-pixel max and mean (1x1 kernel), residual, then a Linear projection."""

    def __init__(self, channels: int, out_dim: int, reduction: int = 12) -> None:
        super().__init__()
        self.channel_mlp = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(channels // reduction, channels, 1, bias=False),
        )
        self.spatial = nn.Conv2d(2, 1, kernel_size=1)
        self.proj = nn.Linear(channels, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = x.permute(0, 3, 1, 2)  # NHWC -> NCHW
        channel_gate = torch.sigmoid(
            self.channel_mlp(grid.amax(dim=(2, 3), keepdim=True))
            + self.channel_mlp(grid.mean(dim=(2, 3), keepdim=True))
        )
        gated = grid * channel_gate
        pooled = torch.cat([gated.amax(dim=1, keepdim=True), gated.mean(dim=1, keepdim=True)], dim=1)
        out = gated * torch.sigmoid(self.spatial(pooled)) + grid
        return self.proj(out.permute(0, 2, 3, 1))


class SwinSpatialPyramid(nn.Module):
    def __init__(self, grid: int, levels: int, drop_path: float = 0.1, dropout: float = 0.1) -> None:
        super().__init__()
        self.windows = pyramid_windows(grid, levels)
        self.branches = nn.ModuleList(
            swin_stage(HIGH_DIM, grid, 1 if w == grid else 2, 3, w, drop_path) for w in self.windows
        )
        self.fuse = ChannelSpatialAttention(HIGH_DIM * len(self.windows), LOW_DIM)
        self.out = nn.Sequential(nn.ReLU(), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.fuse(torch.cat([branch(x) for branch in self.branches], dim=-1)))


class TransDeepLab(nn.Module):
    def __init__(
        self,
        num_classes: int = 9,
        img_size: int = 224,
        window_size: int = 7,
        levels: int = 2,
        drop_path_rate: float = 0.1,
    ) -> None:
        super().__init__()
        self.img_size = img_size
        self.swin = swin_stages(img_size, window_size, ENCODER_DEPTHS, ENCODER_HEADS, drop_path_rate)
        self.low_norm = nn.LayerNorm(LOW_DIM)
        high_grid = img_size // 16
        self.pyramid = SwinSpatialPyramid(high_grid, levels, drop_path_rate)
        self.up = nn.ModuleList(
            nn.Sequential(
                swin_stage(LOW_DIM, high_grid * 2**i, 2, 3, window_size, drop_path_rate),
                PatchExpand(LOW_DIM, LOW_DIM),
            )
            for i in range(2)
        )
        self.fuse_low = nn.Sequential(
            swin_stage(2 * LOW_DIM, high_grid * 4, 6, 3, window_size, 0.0), PatchExpand(2 * LOW_DIM, 2 * LOW_DIM)
        )
        self.norm = nn.LayerNorm(2 * LOW_DIM)
        self.final_expand = PatchExpand(2 * LOW_DIM, 2 * LOW_DIM)
        self.head = nn.Conv2d(2 * LOW_DIM, num_classes, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_square_input(x, self.img_size)
        x = self.swin.patch_embed(x)
        low = self.swin.layers[0](x)
        high = self.swin.layers[2](self.swin.layers[1](low))
        y = self.pyramid(high)
        for stage in self.up:
            y = stage(y)
        y = self.fuse_low(torch.cat([self.low_norm(low), y], dim=-1))
        y = self.final_expand(self.norm(y))
        return self.head(y.permute(0, 3, 1, 2))


@register_model(
    "transdeeplab",
    Capabilities(swin="swin"),
    presets={f"{n}level-224": {"levels": n, "img_size": 224, "window_size": 7} for n in (1, 2, 3, 4)},
)
def transdeeplab(
    num_classes: int = 3, img_size: int = 512, window_size: int = 8, levels: int = 2, drop_path_rate: float = 0.1
) -> TransDeepLab:
    """TransDeepLab: Swin-T encoder, Swin spatial pyramid pooling with CBAM fusion, Swin decoder."""
    return TransDeepLab(num_classes, img_size, window_size, levels, drop_path_rate)

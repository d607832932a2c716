"""Swin-Unet building blocks on timm's Swin Transformer: encoder with stage-input skips, ResMLP, patch expanding,
and a decoder that optionally fuses CNN features (CS-UNet) at the bottleneck and every skip level.

Everything works on channels-last token grids (B, H, W, C), timm's Swin layout; a (B, H, W, C) grid is the
paper's (B, H*W, C) token sequence without the reshape.
"""

from __future__ import annotations

import torch
from timm.models.swin_transformer import SwinTransformer, SwinTransformerBlock, WindowAttention
from torch import nn

from csunet.errors import SettingsError

DEPTH_PRESETS = {"original": (2, 2, 6, 2), "intermediate": (2, 2, 2, 2), "shallow": (1, 1, 1, 1)}
"""Blocks per Swin stage: the paper's original and intermediate depths, and one block per stage for small compute
(with ``embed_dim`` 48, the CS-UNet that learned most per CPU minute from scratch in
benchmarks/results/recipe_ablation.md)."""
HEADS = (3, 6, 12, 24)
EMBED_DIM = 96
"""Swin-T's width; smaller widths (a multiple of 8) make quick models for small data and tests."""
PATCH_SIZE = 4
DECODER_LEVELS = (2, 1, 0)
"""Encoder level (0 = 1/4 resolution) each decoder stage works at, in decoding order."""


def fused_window_attention(module: nn.Module) -> nn.Module:
    """Switch timm's window attention to PyTorch's scaled_dot_product_attention (timm keeps it off for Swin as
    experimental): the same maths, ~10 % faster training steps on CPU and less memory on GPU."""
    for child in module.modules():
        if isinstance(child, WindowAttention):
            child.fused_attn = True
    return module


def resolve_depths(depths: str | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    if isinstance(depths, str):
        if depths not in DEPTH_PRESETS:
            raise SettingsError(
                f"unknown depth preset {depths!r}; choose from {sorted(DEPTH_PRESETS)} or give 4 ints"
            )
        return DEPTH_PRESETS[depths]
    depths = tuple(int(d) for d in depths)
    if len(depths) != 4:
        raise SettingsError(f"Swin depths must have 4 stages, got {depths}")
    return depths


def check_grid(img_size: int, window_size: int, multiple: int = 32) -> None:
    """Refuse, with the fix spelled out, input sizes whose token grids do not split into windows.

    Each stage's grid (img/4, img/8, img/16, img/32) must be a multiple of the window, or no larger than it
    (then the window shrinks to the grid, as in Swin).
    """
    if img_size % multiple:
        raise SettingsError(
            f"img_size {img_size} must be a multiple of {multiple} (four 2x downsamplings after a 4x patch)"
        )
    bad = [
        img_size // (PATCH_SIZE * 2**i)
        for i in range(4)
        if img_size // (PATCH_SIZE * 2**i) > window_size and (img_size // (PATCH_SIZE * 2**i)) % window_size
    ]
    if bad:
        fits = [
            s
            for s in range(multiple, 2049, multiple)
            if all(
                (s // (PATCH_SIZE * 2**i)) <= window_size or (s // (PATCH_SIZE * 2**i)) % window_size == 0
                for i in range(4)
            )
        ]
        near = sorted(fits, key=lambda s: abs(s - img_size))[:3]
        raise SettingsError(
            f"img_size {img_size} with window {window_size} gives token grids {bad} that do not divide into "
            f"{window_size}x{window_size} windows; use img_size {' or '.join(map(str, sorted(near)))} "
            f"(or window 7 with 224, window 8 with 512)"
        )


class ResMLP(nn.Module):
    """The CS-UNet paper's MLP: fc1 -> GELU -> fc2 with a residual from fc1's input, then GELU -> fc3.

    fc1/fc2 have the shapes of Swin's MLP so pretrained Swin MLP weights load into them; fc3 starts fresh.
    """

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act1 = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.act2 = nn.GELU()
        self.fc3 = nn.Linear(dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        x = self.drop(self.act1(self.fc1(x)))
        x = self.drop(self.act2(self.fc2(x) + h))
        return self.drop(self.fc3(x))


def use_res_mlp(module: nn.Module) -> None:
    """Swap the MLP of every Swin block inside ``module`` for a ResMLP of the same widths."""
    for block in module.modules():
        if isinstance(block, SwinTransformerBlock):
            block.mlp = ResMLP(block.mlp.fc1.in_features, block.mlp.fc1.out_features, block.mlp.drop1.p)


def check_square_input(x: torch.Tensor, img_size: int) -> torch.Tensor:
    """Models whose token grids are fixed at build time take exactly ``img_size`` squares; grey is repeated."""
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise SettingsError(f"expected input (B, 1 or 3, H, W), got {tuple(x.shape)}")
    if tuple(x.shape[-2:]) != (img_size, img_size):
        raise SettingsError(
            f"this model takes {img_size}x{img_size} inputs, got {x.shape[-1]}x{x.shape[-2]}; "
            "larger images are segmented tile by tile (csunet predict does this)"
        )
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def swin_stages(
    img_size: int,
    window_size: int,
    depths: tuple[int, ...],
    heads: tuple[int, ...],
    drop_path_rate: float = 0.1,
    patch_embed: bool = True,
    embed_dim: int = EMBED_DIM,
    in_chans: int = 3,
) -> nn.Module:
    """The first ``len(depths)`` stages of timm's Swin (timm key names, so Swin-T checkpoints load), without the
    final norm and head; ``patch_embed`` is dropped for models that feed the stages CNN features instead."""
    check_grid(img_size, window_size, multiple=PATCH_SIZE * 2 ** (len(depths) - 1))
    swin = SwinTransformer(
        img_size=img_size, patch_size=PATCH_SIZE, in_chans=in_chans, num_classes=0, embed_dim=embed_dim, depths=depths,
        num_heads=heads, window_size=window_size, mlp_ratio=4.0, qkv_bias=True, drop_path_rate=drop_path_rate,
    )  # fmt: skip
    fused_window_attention(swin)
    stages = nn.Module()
    if patch_embed:
        stages.patch_embed = swin.patch_embed
    stages.layers = swin.layers
    return stages


class PatchExpand(nn.Module):
    """Linear to ``out_dim * scale**2`` channels (no bias), pixel-shuffle by ``scale``, LayerNorm(out_dim)."""

    def __init__(self, in_dim: int, out_dim: int, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self.out_dim = out_dim
        self.expand = nn.Linear(in_dim, out_dim * scale * scale, bias=False)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        s = self.scale
        x = self.expand(x).view(b, h, w, s, s, self.out_dim).permute(0, 1, 3, 2, 4, 5)
        return self.norm(x.reshape(b, h * s, w * s, self.out_dim))


class SwinEncoder(nn.Module):
    """timm's Swin Transformer (same module names, so timm/Microsoft checkpoints map 1:1) that also returns skips.

    Skips are each stage's input (Swin-Unet's convention): patch-embed output, then each patch-merge output.
    """

    def __init__(
        self,
        img_size: int = 512,
        window_size: int = 8,
        depths: tuple[int, ...] = DEPTH_PRESETS["intermediate"],
        in_chans: int = 3,
        drop_path_rate: float = 0.2,
        res_mlp: bool = True,
        embed_dim: int = EMBED_DIM,
    ) -> None:
        super().__init__()
        stages = swin_stages(img_size, window_size, depths, HEADS, drop_path_rate, embed_dim=embed_dim,
                             in_chans=in_chans)  # fmt: skip
        self.patch_embed, self.layers = stages.patch_embed, stages.layers
        self.norm = nn.LayerNorm(embed_dim * 2 ** (len(depths) - 1))
        self.drop_path_rates = [r.item() for r in torch.linspace(0, drop_path_rate, sum(depths))]
        if res_mlp:
            use_res_mlp(self)
        self.img_size, self.window_size, self.depths = img_size, window_size, depths

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.patch_embed(x)
        skips = []
        for i, stage in enumerate(self.layers):
            x = stage.downsample(x)
            if i < len(self.layers) - 1:
                skips.append(x)
            x = stage.blocks(x)
        return self.norm(x), skips


class SwinDecoderStage(nn.Module):
    """concat(x, Swin skip, CNN skip) -> Linear to ``dim`` -> Swin blocks -> optional 2x patch expand."""

    def __init__(
        self,
        dim: int,
        cnn_dim: int,
        grid: int,
        depth: int,
        num_heads: int,
        window_size: int,
        drop_path: list[float],
        upsample: bool,
    ) -> None:
        super().__init__()
        self.concat_proj = nn.Linear(2 * dim + cnn_dim, dim)
        self.blocks = nn.Sequential(
            *[
                SwinTransformerBlock(
                    dim=dim,
                    input_resolution=(grid, grid),
                    num_heads=num_heads,
                    window_size=window_size,
                    shift_size=0 if j % 2 == 0 else window_size // 2,
                    mlp_ratio=4.0,
                    qkv_bias=True,
                    drop_path=drop_path[j],
                )
                for j in range(depth)
            ]
        )
        fused_window_attention(self.blocks)
        self.upsample = PatchExpand(dim, dim // 2) if upsample else nn.Identity()

    def forward(self, x: torch.Tensor, skip: torch.Tensor, cnn_skip: torch.Tensor | None) -> torch.Tensor:
        parts = [x, skip] if cnn_skip is None else [x, skip, cnn_skip]
        x = self.blocks(self.concat_proj(torch.cat(parts, dim=-1)))
        return self.upsample(x)


class SwinUNetDecoder(nn.Module):
    """Bottleneck fusion, three decoder stages (encoder depths and heads mirrored) and the x4 segmentation head.

    ``cnn_dims`` are the CNN feature widths at strides 4, 8, 16, 32 (all 0 without a CNN branch).
    """

    def __init__(
        self,
        num_classes: int,
        img_size: int,
        window_size: int,
        depths: tuple[int, ...],
        drop_path_rates: list[float],
        cnn_dims: tuple[int, int, int, int] = (0, 0, 0, 0),
        res_mlp: bool = True,
        embed_dim: int = EMBED_DIM,
    ) -> None:
        super().__init__()
        dims = [embed_dim * 2**i for i in range(4)]
        self.bottleneck = PatchExpand(dims[3] + cnn_dims[3], dims[2])
        self.stages = nn.ModuleList()
        for level in DECODER_LEVELS:
            start = sum(depths[:level])
            self.stages.append(
                SwinDecoderStage(
                    dim=dims[level],
                    cnn_dim=cnn_dims[level],
                    grid=img_size // (PATCH_SIZE * 2**level),
                    depth=depths[level],
                    num_heads=HEADS[level],
                    window_size=window_size,
                    drop_path=drop_path_rates[start : start + depths[level]],
                    upsample=level > 0,
                )
            )
        self.norm = nn.LayerNorm(dims[0])
        self.head_expand = PatchExpand(dims[0], dims[0], scale=PATCH_SIZE)
        self.head = nn.Conv2d(dims[0], num_classes, kernel_size=1, bias=False)
        if res_mlp:
            use_res_mlp(self)

    def forward(
        self, bottleneck: torch.Tensor, skips: list[torch.Tensor], cnn_features: list[torch.Tensor] | None
    ) -> torch.Tensor:
        fuse = [bottleneck] if cnn_features is None else [bottleneck, cnn_features[3]]
        x = self.bottleneck(torch.cat(fuse, dim=-1))
        for stage, level in zip(self.stages, DECODER_LEVELS):
            x = stage(x, skips[level], None if cnn_features is None else cnn_features[level])
        x = self.head_expand(self.norm(x))
        return self.head(x.permute(0, 3, 1, 2))

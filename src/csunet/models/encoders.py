"""The one factory of CNN encoders (segmentation_models_pytorch's), used by CS-UNet, HiFormer and the smp
baselines, so every model takes the same encoder names and refuses unknown ones the same way."""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch
from torch import nn

from csunet.errors import SettingsError


def check_cnn_encoder(name: str) -> str:
    """``name`` if segmentation_models_pytorch knows it (its own names and timm's ``tu-`` ones)."""
    if name in smp.encoders.encoders or name.startswith("tu-"):
        return name
    raise SettingsError(f"unknown CNN encoder {name!r}; see segmentation_models_pytorch's encoder list")


def build_cnn_encoder(name: str, in_channels: int = 3, depth: int = 5) -> nn.Module:
    """An smp encoder (``depth`` stride-2 stages) without pretrained weights (weights load through csunet.weights)."""
    try:
        return smp.encoders.get_encoder(
            check_cnn_encoder(name), in_channels=in_channels, depth=depth, weights=None
        )
    except KeyError:
        raise SettingsError(
            f"unknown CNN encoder {name!r}; see segmentation_models_pytorch's encoder list"
        ) from None


def pyramid_widths(encoder: nn.Module) -> tuple[int, int, int, int]:
    """Feature widths at strides 4, 8, 16 and 32."""
    return tuple(encoder.out_channels[2:6])


def pyramid_grids(encoder: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Features at strides 4, 8, 16, 32 as channels-last token grids (B, H, W, C), the Swin layout.

    smp encoders return [input, /2, /4, /8, /16, /32].
    """
    return [f.permute(0, 2, 3, 1) for f in encoder(x)[2:6]]

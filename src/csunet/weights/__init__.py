"""Pretrained weights: where they come from, how they are cached, and loading with a report.

Swin-T: Microsoft's or timm's checkpoints (ImageNet, or MicroLite from `csunet pretrain`). CNN encoders:
ImageNet through segmentation_models_pytorch, MicroNet and ImageNet->MicroNet from NASA. Every load returns a
:class:`LoadReport`; a load that leaves an encoder stage fresh is an error.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from torch import nn

from csunet.weights.catalog import CNN_SOURCES, WeightSource, all_sources, cnn_source, find_source
from csunet.weights.files import (
    WeightsError,
    checksum_file,
    download,
    read_state_dict,
    sha256_of,
    verify_cached,
    weights_cache,
)
from csunet.weights.load import LoadReport, cnn_filter, load_cnn, load_cnn_imagenet, load_swin, swin_filter


def cached_path(source: WeightSource) -> Path:
    return weights_cache() / source.filename


def fetch(name: str, progress: bool = True, url: str | None = None) -> Path:
    """The cached file of a published weight (``resnet50.micronet``, ``swin_t.imagenet``), downloading if needed."""
    source = find_source(name)
    path = cached_path(source)
    if path.exists():
        verify_cached(path, source.sha256)
        return path
    return download(url or source.url, path, source.sha256, progress)


def import_file(path: str | os.PathLike, name: str) -> Path:
    """Put a weight file fetched elsewhere into the cache under a catalogue name, after checking it loads safely."""
    source = find_source(name)
    path = Path(path)
    state = read_state_dict(path)
    if not state:
        raise WeightsError(f"{path}: holds no tensors")
    destination = cached_path(source)
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(destination.name + ".part")
    shutil.copyfile(path, temporary)
    os.replace(temporary, destination)
    checksum_file(destination).write_text(sha256_of(destination) + "\n")
    return destination


def list_weights() -> list[dict]:
    """Every catalogued weight file with its URL and whether (and where) it is cached."""
    rows = []
    for source in all_sources():
        path = cached_path(source)
        rows.append(
            {
                "name": source.name,
                "kind": source.kind,
                "url": source.url,
                "cached": path.exists(),
                "path": str(path) if path.exists() else None,
            }
        )
    return rows


def detect_format(state: dict[str, torch.Tensor]) -> str:
    microsoft_head = "head.weight" in state and "patch_embed.proj.weight" in state
    if "layers.0.downsample.reduction.weight" in state or microsoft_head:
        return "swin (Microsoft)"
    if "patch_embed.proj.weight" in swin_filter(state):
        return "swin (timm)"
    return "cnn / other state dict"


def inspect_file(path: str | os.PathLike) -> dict:
    """What a checkpoint holds: format, tensor and parameter counts, dtypes, top-level groups, SHA-256."""
    state = read_state_dict(path)
    groups: dict[str, int] = {}
    for key, value in state.items():
        top = key.split(".")[0]
        groups[top] = groups.get(top, 0) + value.numel()
    return {
        "path": str(path),
        "format": detect_format(state),
        "tensors": len(state),
        "parameters": int(sum(v.numel() for v in state.values())),
        "dtypes": sorted({str(v.dtype).replace("torch.", "") for v in state.values()}),
        "groups": groups,
        "sha256": sha256_of(path),
    }


def resolve(spec: str | os.PathLike, progress: bool = True) -> Path:
    """A local file path as is; otherwise a catalogue name, fetched into the cache."""
    path = Path(spec)
    return path if path.is_file() else fetch(str(spec), progress)


def load_pretrained(
    model: nn.Module,
    swin: str | os.PathLike | None = None,
    cnn: str | os.PathLike | None = None,
    encoder_name: str | None = None,
    progress: bool = True,
) -> list[LoadReport]:
    """Load Swin and/or CNN weights into a registry model and return the reports.

    ``swin``: a file or a catalogue name (``swin_t.imagenet``). ``cnn``: ``imagenet`` (through smp),
    ``micronet`` / ``image-micronet`` (NASA, for ``encoder_name``), or a file.
    """
    reports = []
    if swin is not None:
        reports.append(load_swin(model, resolve(swin, progress)))
    if cnn is not None:
        encoder_name = encoder_name or getattr(model, "encoder_name", None)
        if cnn == "imagenet":
            reports.append(load_cnn_imagenet(model, encoder_name))
        elif cnn in CNN_SOURCES:
            reports.append(load_cnn(model, fetch(cnn_source(encoder_name, cnn).name, progress)))
        else:
            reports.append(load_cnn(model, resolve(cnn, progress)))
    return reports


__all__ = [
    "LoadReport",
    "WeightsError",
    "cnn_filter",
    "fetch",
    "import_file",
    "inspect_file",
    "list_weights",
    "load_cnn",
    "load_pretrained",
    "load_swin",
    "read_state_dict",
    "swin_filter",
]

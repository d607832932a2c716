"""What a bug report needs: versions, threads, accelerators, folders."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

from csunet.utils import cache_dir

PACKAGES = {
    "csunet": "csunet",
    "torch": "torch",
    "torchvision": "torchvision",
    "timm": "timm",
    "smp": "segmentation_models_pytorch",
    "albumentations": "albumentations",
    "lightning": "lightning",
    "torchmetrics": "torchmetrics",
    "numpy": "numpy",
    "tifffile": "tifffile",
    "onnxruntime": "onnxruntime",
}


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return None


def _cuda() -> dict:
    import torch

    info: dict = {"available": torch.cuda.is_available(), "built_with": torch.version.cuda, "devices": []}
    if info["available"]:
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            info["devices"].append(
                {"index": i, "name": props.name, "memory_gib": round(props.total_memory / 2**30, 1)}
            )
    elif torch.version.cuda is None:
        info["why_none"] = "this torch build has no CUDA support (CPU-only build)"
    else:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        info["why_none"] = (
            f"CUDA_VISIBLE_DEVICES={visible!r} hides every device"
            if visible is not None and visible.strip() in ("", "-1")
            else "no NVIDIA driver or GPU found by torch"
        )
    return info


def environment_report() -> dict:
    import torch

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {name: _version(dist) for name, dist in PACKAGES.items()},
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": _cuda(),
        "weights_cache": str(cache_dir()),
    }

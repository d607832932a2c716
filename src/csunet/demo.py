"""The demo: what `make demo` runs on the bundled sample."""

from __future__ import annotations

from collections.abc import Callable

import torch

from csunet.data import SegmentationDataset, dataset_info, sample_description
from csunet.models import count_parameters, create_model

DEMO_MODEL = {"encoder": "resnet18", "depths": "intermediate", "img_size": 512, "window_size": 8}


def run_demo(show: Callable[[dict], None] = print, say: Callable[[str], None] = print) -> dict:
    """Summarise the bundled Super-1 sample, then run an untrained CS-UNet on one of its test images."""
    description = sample_description()
    report = dataset_info(description)
    show(report)
    model = create_model("cs_unet", num_classes=description.num_classes, **DEMO_MODEL).eval()
    image, mask = SegmentationDataset(description, "test")[0]
    with torch.no_grad():
        logits = model(image[None])
    say(
        f"CS-UNet ({DEMO_MODEL['encoder']} + {DEMO_MODEL['depths']} Swin-T, {count_parameters(model) / 1e6:.1f}M "
        f"parameters): test image {tuple(image.shape)} -> logits {tuple(logits.shape)} for classes "
        f"{', '.join(description.classes)} (untrained; training arrives with `csunet train`)"
    )
    report["model"] = {"settings": DEMO_MODEL, "parameters": count_parameters(model), "logits": list(logits.shape)}
    return report

import re

import pytest
import segmentation_models_pytorch as smp
import timm
import torch


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CSUNET_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def timm_swin():
    """A randomly initialised timm Swin-T (the format timm's hub serves)."""
    torch.manual_seed(1)
    return timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, drop_path_rate=0.0).eval()


def to_microsoft_format(timm_state: dict, model) -> dict:
    """timm keys -> Microsoft's training checkpoint layout: downsample at the end of a stage, ``head.*``,
    with the relative_position_index buffers Microsoft's files carry."""
    out = {}
    for key, value in timm_state.items():
        key = re.sub(r"^layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", key)
        out[key.replace("head.fc.", "head.")] = value
    for name, module in model.named_modules():
        if hasattr(module, "relative_position_index"):
            out[f"{name}.relative_position_index"] = module.relative_position_index
    return {"model": out}


@pytest.fixture(scope="session")
def microsoft_checkpoint(tmp_path_factory, timm_swin):
    path = tmp_path_factory.mktemp("ckpt") / "swin_tiny_patch4_window7_224.pth"
    torch.save(to_microsoft_format(timm_swin.state_dict(), timm_swin), path)
    return path


@pytest.fixture(scope="session")
def micronet_like_file(tmp_path_factory):
    """Stand-in for NASA's resnet18 MicroNet file: an smp encoder state dict saved with torch.save."""
    torch.manual_seed(2)
    encoder = smp.encoders.get_encoder("resnet18", weights=None)
    path = tmp_path_factory.mktemp("nasa") / "resnet18_pretrained_microscopynet_v1.0.pth.tar"
    torch.save(encoder.state_dict(), path)
    return path, encoder.state_dict()

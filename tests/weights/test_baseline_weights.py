"""Pretrained weights reach the baselines through the same loaders, with the same reports."""

import torch

from csunet.models import create_model
from csunet.weights import load_pretrained
from csunet.weights.load import load_cnn, load_swin


def test_swin_checkpoint_loads_into_hiformer_stages(microsoft_checkpoint, timm_swin):
    model = create_model("hiformer", variant="s", img_size=224, window_size=7, num_classes=9)
    report = load_swin(model, microsoft_checkpoint)
    # HiFormer feeds its Swin stages CNN features: no patch embedding; stages 1-3 load, stage 4 is not used
    assert report.missing == [] and report.mirrored == {}
    assert any(k.startswith("layers.3") for k in report.unexpected)
    assert any(k.startswith("patch_embed") for k in report.unexpected)
    reference = timm_swin.state_dict()
    for key, value in model.swin.state_dict().items():
        if "relative_position_index" not in key and "attn_mask" not in key:
            assert torch.equal(value, reference[key]), key


def test_swin_checkpoint_loads_into_transdeeplab_encoder(microsoft_checkpoint):
    model = create_model("transdeeplab", levels=2, img_size=224, window_size=7, num_classes=9)
    report = load_swin(model, microsoft_checkpoint)
    assert report.missing == [] and any(k.startswith("patch_embed") for k in report.loaded)
    assert any(k.startswith("layers.3") for k in report.unexpected)


def test_micronet_file_loads_into_unet_plusplus(micronet_like_file):
    path, state = micronet_like_file
    model = create_model("unet_plusplus", encoder="resnet18", num_classes=3)
    (report,) = load_pretrained(model, cnn=str(path))
    assert report.missing == [] and report.unexpected == [] and len(report.loaded) == len(state)
    assert torch.equal(model.encoder.conv1.weight, state["conv1.weight"])


def test_micronet_resnet_file_loads_into_hiformer_up_to_its_last_stage(micronet_like_file):
    path, _ = micronet_like_file
    model = create_model("hiformer", variant="s", encoder="resnet18", img_size=224, window_size=7)
    report = load_cnn(model, path)
    assert report.missing == []
    assert report.unexpected and all(k.startswith(("layer4", "fc")) for k in report.unexpected)

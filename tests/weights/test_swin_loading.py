"""Swin checkpoints: Microsoft and timm formats, mirroring, table resizing, equivalence, and loud failures."""

import argparse

import pytest
import torch
from safetensors.torch import save_file

from csunet.models import Capabilities, SwinEncoder, create_model
from csunet.weights import WeightsError, load_swin, read_state_dict


def test_microsoft_checkpoint_loads_every_encoder_tensor(microsoft_checkpoint, timm_swin):
    model = create_model("cs_unet", encoder="resnet18", depths="original", img_size=512, window_size=8)
    report = load_swin(model, microsoft_checkpoint)
    encoder_keys = set(model.swin.state_dict())
    fresh_encoder = {k for k in encoder_keys if "swin." + k in report.missing}
    assert fresh_encoder == {k for k in encoder_keys if ".mlp.fc3." in k}  # only ResMLP's new layer
    assert len(report.resized) == 12 and report.unexpected == []
    table = "swin.layers.0.blocks.0.attn.relative_position_bias_table"
    assert report.resized[table] == ([169, 3], [225, 3])
    reference = timm_swin.state_dict()
    for ours, theirs in [
        ("layers.1.downsample.reduction.weight", "layers.1.downsample.reduction.weight"),
        ("layers.2.blocks.5.mlp.fc1.weight", "layers.2.blocks.5.mlp.fc1.weight"),
        ("layers.3.blocks.1.mlp.fc2.bias", "layers.3.blocks.1.mlp.fc2.bias"),
        ("patch_embed.proj.weight", "patch_embed.proj.weight"),
        ("norm.weight", "norm.weight"),
    ]:
        assert torch.equal(model.swin.state_dict()[ours], reference[theirs]), ours


def test_decoder_is_mirrored_from_encoder_levels(microsoft_checkpoint):
    model = create_model("cs_unet", encoder="resnet18", depths="original", img_size=512, window_size=8)
    report = load_swin(model, microsoft_checkpoint)
    decoder, encoder = model.decoder.state_dict(), model.swin.state_dict()
    for stage, level, depth in [(0, 2, 6), (1, 1, 2), (2, 0, 2)]:
        for block in range(depth):
            for leaf in ("attn.qkv.weight", "attn.relative_position_bias_table", "mlp.fc1.weight", "norm2.bias"):
                ours = f"stages.{stage}.blocks.{block}.{leaf}"
                assert torch.equal(decoder[ours], encoder[f"layers.{level}.blocks.{block}.{leaf}"]), ours
                assert report.mirrored[f"decoder.{ours}"] == f"swin.layers.{level}.blocks.{block}.{leaf}"
    assert len(report.mirrored) == (6 + 2 + 2) * 13  # 13 pretrained tensors per Swin block (fc3 is new)
    assert "decoder.head.weight" in report.missing and "decoder.stages.0.concat_proj.weight" in report.missing


@pytest.mark.parametrize("fmt", ["timm", "microsoft"])
def test_loaded_encoder_reproduces_timm_swin(fmt, timm_swin, microsoft_checkpoint):
    encoder = SwinEncoder(224, 7, (2, 2, 6, 2), drop_path_rate=0.0, res_mlp=False).eval()
    host = torch.nn.Module()
    host.swin, host.capabilities = encoder, Capabilities(swin="swin")  # what create_model would attach
    checkpoint = timm_swin.state_dict() if fmt == "timm" else microsoft_checkpoint
    report = load_swin(host, checkpoint)
    assert report.missing == [] and report.resized == {}
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        bottleneck, skips = encoder(x)
        expected = timm_swin.forward_features(x)
        stages = timm_swin.forward_intermediates(x, norm=False, intermediates_only=True)
    torch.testing.assert_close(bottleneck, expected)
    for level in (1, 2):
        torch.testing.assert_close(
            skips[level], timm_swin.layers[level].downsample(stages[level - 1].permute(0, 2, 3, 1))
        )


def test_intermediate_model_ignores_extra_blocks_and_says_so(timm_swin):
    model = create_model("cs_unet", encoder="resnet18", depths="intermediate", img_size=224, window_size=7)
    report = load_swin(model, timm_swin.state_dict())
    assert sorted({k.split(".attn")[0].split(".mlp")[0].split(".norm")[0] for k in report.unexpected}) == [
        f"swin.layers.2.blocks.{i}" for i in (2, 3, 4, 5)
    ]


def test_wrong_keys_fail_loudly():
    model = create_model("swin_unet")
    bogus = {"backbone_xyz.stage0.weight": torch.zeros(3), "fc.weight": torch.zeros(2, 2)}
    with pytest.raises(
        WeightsError, match=r"nothing in this checkpoint loads into swin encoder stage\(s\) patch_embed"
    ):
        load_swin(model, bogus)


def test_partial_checkpoint_missing_a_stage_fails(timm_swin):
    state = {k: v for k, v in timm_swin.state_dict().items() if not k.startswith("layers.3")}
    with pytest.raises(WeightsError, match=r"stage\(s\) layers\.3"):
        load_swin(create_model("swin_unet"), state)


def test_shape_mismatch_is_an_error(timm_swin):
    state = dict(timm_swin.state_dict())
    state["layers.0.blocks.0.attn.qkv.weight"] = torch.zeros(10, 96)
    with pytest.raises(WeightsError, match=r"layers\.0\.blocks\.0\.attn\.qkv\.weight: checkpoint \[10, 96\]"):
        load_swin(create_model("swin_unet"), state)


def test_unsafe_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "args": argparse.Namespace(lr=1)}, path)
    with pytest.raises(WeightsError, match=r"evil\.pth: refused: .*\(argparse\.Namespace\) that would run code"):
        read_state_dict(path)


def test_safetensors_and_wrappers(tmp_path, timm_swin):
    path = tmp_path / "swin.safetensors"
    save_file({f"module.{k}": v.contiguous() for k, v in timm_swin.state_dict().items()}, str(path))
    report = load_swin(create_model("swin_unet"), path)
    assert len(report.loaded) > 100 and str(path) in str(report)


def test_corrupt_file_named(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match=r"broken\.pth: not a readable PyTorch checkpoint"):
        read_state_dict(path)

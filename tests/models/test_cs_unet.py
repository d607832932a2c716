"""CS-UNet: shapes for several CNN families, depths and widths, the paper's parameter counts, the fusion shapes."""

import pytest
import torch

from csunet.models import ResMLP, count_parameters, create_model
from csunet.models.encoders import pyramid_grids
from tests.models.base import ModelTestBase

SMALL = {"encoder": "resnet18", "img_size": 224, "window_size": 7}


class TestCSUNet(ModelTestBase):
    name = "cs_unet"
    small = SMALL
    shape_cases = [
        {**SMALL, "encoder": family}
        for family in ("resnet34", "efficientnet-b0", "se_resnet50", "vgg16_bn", "densenet121")
    ] + [
        {**SMALL, "depths": "original", "num_classes": 5},
        {"encoder": "resnet18", "img_size": 128, "window_size": 8, "depths": "shallow", "embed_dim": 48},
        {"encoder": "resnet18", "img_size": 512, "window_size": 8, "depths": "original"},
        {"encoder": "efficientnet-b0", "img_size": 512, "window_size": 8, "depths": "intermediate"},
    ]


@pytest.mark.parametrize(
    ("encoder", "depths", "millions"),
    [
        ("resnet50", "intermediate", 56.30),
        ("resnet50", "original", 71.70),
        ("efficientnet-b4", "intermediate", 47.45),
    ],
)
def test_parameter_counts_match_the_paper(encoder, depths, millions):
    model = create_model("cs_unet", encoder=encoder, depths=depths, img_size=512, window_size=8, num_classes=3)
    assert count_parameters(model) / 1e6 == pytest.approx(millions, abs=0.01)


def test_resnet50_parts_and_fusion_shapes():
    model = create_model("cs_unet", encoder="resnet50", img_size=512, window_size=8).eval()
    assert count_parameters(model.cnn) / 1e6 == pytest.approx(23.5, abs=0.05)
    assert count_parameters(model.swin) / 1e6 == pytest.approx(22.0, abs=0.05)
    assert count_parameters(model.decoder) / 1e6 == pytest.approx(10.8, abs=0.05)
    assert model.decoder.bottleneck.expand.weight.shape == (1536, 768 + 2048)
    assert [s.concat_proj.in_features for s in model.decoder.stages] == [1792, 896, 448]
    assert model.decoder.head_expand.expand.weight.shape == (1536, 96)
    assert all(isinstance(b.mlp, ResMLP) for s in model.swin.layers for b in s.blocks)
    x = torch.rand(1, 3, 512, 512)
    with torch.no_grad():
        tokens = [f.shape for f in pyramid_grids(model.cnn, x)]
        bottleneck, skips = model.swin(x)
    assert tokens == [(1, 128, 128, 256), (1, 64, 64, 512), (1, 32, 32, 1024), (1, 16, 16, 2048)]
    assert [s.shape for s in skips] == [(1, 128, 128, 96), (1, 64, 64, 192), (1, 32, 32, 384)]
    assert bottleneck.shape == (1, 16, 16, 768)


def test_res_mlp_is_the_papers():
    torch.manual_seed(0)
    mlp = ResMLP(8, 32).eval()
    x = torch.randn(3, 8)
    gelu = torch.nn.functional.gelu
    expected = mlp.fc3(gelu(mlp.fc2(gelu(mlp.fc1(x))) + x))
    assert torch.allclose(mlp(x), expected)


def test_unknown_encoder_is_explained():
    with pytest.raises(ValueError, match="unknown CNN encoder 'resnet5000'"):
        create_model("cs_unet", encoder="resnet5000")


def test_the_swin_side_starts_as_the_authors_do_and_the_cnn_keeps_its_own_init():
    torch.manual_seed(0)
    model = create_model("cs_unet", encoder="resnet18", img_size=224, window_size=7)
    linears = [m for part in (model.swin, model.decoder) for m in part.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) > 50  # encoder, ResMLP fc1-3, fusion projections, patch expansions, attention
    weights = torch.cat([m.weight.flatten() for m in linears])
    assert weights.std().item() == pytest.approx(0.02, rel=0.02) and weights.mean().abs() < 1e-4
    for m in linears:  # PyTorch's default (kaiming-uniform) would give std 1/sqrt(3 fan_in): 0.0295 at 384 in
        assert m.weight.std().item() == pytest.approx(0.02, rel=0.25), m
        assert m.bias is None or torch.count_nonzero(m.bias) == 0
    fc3 = model.decoder.stages[0].blocks[0].mlp.fc3
    assert fc3.weight.std().item() == pytest.approx(0.02, rel=0.1)  # a fresh layer, not in timm's Swin
    norms = [
        m for part in (model.swin, model.decoder) for m in part.modules() if isinstance(m, torch.nn.LayerNorm)
    ]
    assert all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in norms)
    # the CNN's first convolution keeps kaiming-normal (fan-out, ReLU): std sqrt(2 / (64 * 7 * 7)) = 0.0253
    assert model.cnn.conv1.weight.std().item() == pytest.approx((2 / (64 * 49)) ** 0.5, rel=0.05)

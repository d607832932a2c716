"""The paper's baselines: UNet/UNet++ (smp), HiFormer S/B/L and TransDeepLab 1-4 levels.

Parameter counts are the authors' models at 224 / 9 classes; our fixes of HiFormer's bugs add or remove no tensor.
"""

import pytest
import segmentation_models_pytorch as smp
import torch

from csunet.models import count_parameters, create_model
from csunet.models.transdeeplab import pyramid_windows
from csunet.weights.catalog import NASA_ENCODERS
from tests.models.base import ModelTestBase

HIFORMER_SMALL = {"variant": "s", "img_size": 224, "window_size": 7}
TRANSDEEPLAB_SMALL = {"levels": 1, "img_size": 224, "window_size": 7}


class TestHiFormer(ModelTestBase):
    name = "hiformer"
    small = HIFORMER_SMALL
    size_multiple = 16
    shape_cases = [
        {**HIFORMER_SMALL, "variant": "b", "num_classes": 9},
        {"variant": "s", "img_size": 512, "window_size": 8, "num_classes": 3},
        {**HIFORMER_SMALL, "encoder": "resnet18", "num_classes": 2},
    ]


class TestTransDeepLab(ModelTestBase):
    name = "transdeeplab"
    small = TRANSDEEPLAB_SMALL
    size_multiple = 16
    shape_cases = [
        {**TRANSDEEPLAB_SMALL, "levels": 4, "num_classes": 9},
        {"levels": 2, "img_size": 512, "window_size": 8, "num_classes": 3},
    ]


@pytest.mark.parametrize(("variant", "millions"), [("s", 23.25), ("b", 25.51), ("l", 29.52)])
def test_hiformer_parameter_counts_match_the_authors(variant, millions):
    model = create_model("hiformer", variant=variant, img_size=224, window_size=7, num_classes=9)
    assert count_parameters(model) / 1e6 == pytest.approx(millions, abs=0.005)


@pytest.mark.parametrize(("levels", "millions"), [(1, 17.5), (2, 21.1), (3, 24.9), (4, 28.6)])
def test_transdeeplab_parameter_counts_match_the_authors(levels, millions):
    model = create_model("transdeeplab", levels=levels, img_size=224, window_size=7, num_classes=9)
    assert count_parameters(model) / 1e6 == pytest.approx(millions, abs=0.05)


def test_pyramid_windows_are_the_largest_divisors_of_the_grid():
    assert [pyramid_windows(14, n) for n in (1, 2, 3, 4)] == [[14], [14, 7], [14, 7, 2], [14, 7, 2, 1]]
    assert pyramid_windows(32, 2) == [32, 16]
    with pytest.raises(ValueError, match="allows 1..4 pyramid levels, not 5"):
        pyramid_windows(14, 5)


def test_hiformer_branch_blocks_and_fusion_shape_the_output():
    # the authors' code lets neither the DLF branch blocks nor (with one DLF block) the fusion reach the output
    model = create_model("hiformer", **HIFORMER_SMALL).eval()
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        before = model(x)
        model.dlf.fusion[0].attn.proj.bias.add_(1.0)
        after_fusion = model(x)
        model.dlf.blocks[1][0].mlp.fc2.bias.add_(1.0)
        after_blocks = model(x)
    assert not torch.allclose(before, after_fusion)
    assert not torch.allclose(after_fusion, after_blocks)


@pytest.mark.parametrize("name", ["unet", "unet_plusplus"])
def test_smp_baselines_take_any_multiple_of_32_and_learn_everywhere(name):
    torch.manual_seed(0)
    model = create_model(name, encoder="resnet18", num_classes=3)
    out = model(torch.rand(2, 3, 96, 160))
    assert out.shape == (2, 3, 96, 160)
    out.square().mean().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    assert model.encoder_name == "resnet18"


def test_every_nasa_encoder_is_an_smp_encoder():
    assert set(NASA_ENCODERS) <= set(smp.encoders.get_encoder_names())
    with pytest.raises(ValueError, match="unknown CNN encoder 'resnet5000'"):
        create_model("unet", encoder="resnet5000")

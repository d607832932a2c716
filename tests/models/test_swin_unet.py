"""Swin-Unet: the CS-UNet skeleton without CNN branch and with plain MLPs."""

import pytest
from timm.layers import Mlp

from csunet.models import count_parameters, create_model, list_models
from tests.models.base import ModelTestBase


class TestSwinUNet(ModelTestBase):
    name = "swin_unet"
    small = {"img_size": 224, "window_size": 7}
    shape_cases = [{"img_size": 224, "window_size": 7, "num_classes": 9, "depths": "original"}]


def test_parameter_count_matches_swin_unet():
    model = create_model("swin_unet", num_classes=9, img_size=224, window_size=7, depths="intermediate")
    assert count_parameters(model) / 1e6 == pytest.approx(27.17, abs=0.01)
    assert model.cnn is None
    assert all(isinstance(b.mlp, Mlp) for s in model.swin.layers for b in s.blocks)
    assert [s.concat_proj.in_features for s in model.decoder.stages] == [768, 384, 192]


def test_registry_lists_both():
    assert {"cs_unet", "swin_unet"} <= set(list_models())
    with pytest.raises(KeyError, match="unknown model 'unet3000'"):
        create_model("unet3000")

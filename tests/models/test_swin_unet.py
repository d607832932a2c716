"""Swin-Unet: the CS-UNet skeleton without CNN branch and with plain MLPs."""

import pytest
from timm.layers import Mlp

from csunet.errors import SettingsError
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
    with pytest.raises(SettingsError, match="unknown model 'unet3000'"):
        create_model("unet3000")


def test_unknown_settings_are_refused_by_name():
    with pytest.raises(ValueError, match=r"no setting 'window_sise'; its settings are .*window_size"):
        create_model("cs_unet", window_sise=8)
    with pytest.raises(ValueError, match="has no setting 'encoder'"):
        create_model("swin_unet", encoder="resnet18")


def test_presets_build_what_they_name():
    model = create_model("cs_unet", preset="paper-224", encoder="resnet18", depths=(1, 1, 1, 1))
    assert model.img_size == 224 and model.swin.window_size == 7
    with pytest.raises(ValueError, match="no preset 'paper-999'; its presets are paper-512, paper-224"):
        create_model("cs_unet", preset="paper-999")

"""Models declare what they are made of on their registry entry; weight loading, parameter counts and the
fast recipe's tile plan read the declaration and guess nothing from attribute names."""

import pytest
import segmentation_models_pytorch as smp
import torch

from csunet.models import create_model, list_models, model_entry
from csunet.models.registry import capabilities_of, model_part
from csunet.models.summary import model_parts
from csunet.train.plan import largest_fitting_tile, smallest_fitting_tile
from csunet.weights import WeightsError, load_cnn, load_swin
from tests.test_export import SMALL_SETTINGS

HAS = {"cs_unet": {"cnn", "swin"}, "hiformer": {"cnn", "swin"}, "swin_unet": {"swin"}, "transdeeplab": {"swin"},
       "unet": {"cnn"}, "unet_plusplus": {"cnn"}}  # fmt: skip
"""What each architecture is made of, from its paper."""


@pytest.mark.parametrize("name", list_models())
def test_each_model_declares_its_parts_and_they_take_their_weights(name):
    model = create_model(name, num_classes=3, **SMALL_SETTINGS[name])
    assert capabilities_of(model) == model_entry(name).capabilities
    assert set(model_parts(model)) == HAS[name]
    if "cnn" in HAS[name]:  # an smp encoder's own state dict (smp builds it) loads into the declared CNN part
        reference = smp.encoders.get_encoder(SMALL_SETTINGS[name]["encoder"], weights=None)
        report = load_cnn(model, reference.state_dict(), source="smp encoder")
        assert len(report.loaded) >= 0.6 * len(reference.state_dict()), len(report.loaded)
        assert not report.missing
    else:
        with pytest.raises(WeightsError, match="has no CNN encoder"):
            load_cnn(model, {}, source="x")
    if "swin" not in HAS[name]:
        with pytest.raises(WeightsError, match="has no Swin encoder"):
            load_swin(model, {}, source="x")
    else:
        assert len(model_part(model, "swin").layers) >= 2


def test_the_decoder_mirrors_the_encoder_only_where_declared():
    model = create_model("swin_unet", num_classes=3, **SMALL_SETTINGS["swin_unet"])
    donor = create_model("swin_unet", num_classes=3, **SMALL_SETTINGS["swin_unet"])
    mirrored = load_swin(model, {f"swin.{k}": v for k, v in donor.swin.state_dict().items()}, source="donor")
    assert mirrored.mirrored  # Swin-Unet's scheme: decoder stages start from the encoder's blocks
    hiformer = create_model("hiformer", num_classes=3, **SMALL_SETTINGS["hiformer"])
    plain = load_swin(hiformer, hiformer.swin.state_dict(), source="itself")
    assert not plain.mirrored


@pytest.mark.parametrize("name", ["unet", "cs_unet"])
def test_planned_tiles_are_multiples_the_model_takes(name):
    entry = model_entry(name)
    multiple = entry.capabilities.size_multiple
    window = SMALL_SETTINGS[name].get("window_size") if entry.fixed_input_size else None
    for limit, least in ((100, 40.0), (333, 150.0), (645, 300.5)):
        for tile in (
            largest_fitting_tile(limit, window, multiple),
            smallest_fitting_tile(least, window, multiple),
        ):
            assert tile % multiple == 0
            settings = {**SMALL_SETTINGS[name], **({"img_size": tile} if entry.fixed_input_size else {})}
            model = create_model(name, num_classes=2, **settings).eval()
            with torch.no_grad():
                assert model(torch.zeros(1, 3, tile, tile)).shape == (1, 2, tile, tile)


def test_every_model_setting_has_one_help_and_an_option():
    """A setting is described once (the registry's SETTING_HELP) and the commands that build models offer it."""
    from typer.testing import CliRunner

    from csunet.cli import app
    from csunet.errors import SettingsError
    from csunet.models import Capabilities, register_model
    from csunet.models.registry import SETTING_HELP, setting_types

    with pytest.raises(SettingsError, match=r"settings \['wobble'\] have no help"):
        register_model("undocumented", Capabilities())(lambda num_classes=3, wobble=1: None)
    assert "undocumented" not in list_models()
    train_help = " ".join(CliRunner().invoke(app, ["train", "--help"], terminal_width=200).output.split())
    check_help = " ".join(
        CliRunner().invoke(app, ["weights", "check", "--help"], terminal_width=200).output.split()
    )
    for name in setting_types():
        flag = "--window" if name == "window_size" else "--" + name.replace("_", "-")
        if name != "drop_path_rate":
            assert f"{flag} " in check_help and SETTING_HELP[name][:30] in check_help, name
        if name not in ("drop_path_rate", "img_size"):  # training's input size is --tile-size
            assert f"{flag} " in train_help, name

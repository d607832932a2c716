"""Property tests (Hypothesis) of the one validation layer: whatever number or text a user gives a setting, it is
either accepted as a finite value in range or refused with a SettingsError naming the setting; never another
exception, never a NaN that slips through."""

import dataclasses
import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csunet.cleanup import RULES, CleanupRules, overridden
from csunet.data.description import MASK_KEYS, TOP_LEVEL_KEYS, DatasetDescription
from csunet.errors import CsunetError, SettingsError
from csunet.morphometry import MeasureSettings
from csunet.pretrain.config import PretrainConfig
from csunet.sharding import parse_shard
from csunet.train import TrainConfig

ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1.0, 0.5, 1e-12, 1e300])
RATES = ["lr", "weight_decay", "grad_clip", "max_minutes", "val_fraction", "test_fraction", "class_temperature",
         "class_crops", "warmup", "val_overlap", "fine_tune_lr"]  # fmt: skip
QUICK = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", RATES)
@QUICK
@given(value=ANY_FLOAT)
def test_a_number_setting_is_accepted_in_range_or_refused_by_name(name, value):
    try:
        config = TrainConfig(recipe="fast", **{name: value})
    except SettingsError as exc:
        assert name in str(exc)
        return
    assert math.isfinite(getattr(config, name)) and getattr(config, name) >= 0


@QUICK
@given(value=st.integers(-(2**40), 2**40) | st.sampled_from([-1, 0, 2**32 - 1, 2**32]))
def test_seeds_are_in_range_or_refused(value):
    try:
        config = TrainConfig(recipe="fast", seed=value)
    except SettingsError as exc:
        assert "seed" in str(exc)
        return
    assert 0 <= config.seed < 2**32


@QUICK
@given(text=st.text(max_size=12) | st.from_regex(r"\s*\d{1,3}\s*/\s*\d{1,3}\s*", fullmatch=True))
def test_shards_are_two_ascii_numbers_or_refused(text):
    try:
        index, count = parse_shard(text)
    except SettingsError as exc:
        assert "--shard" in str(exc)
        return
    assert 1 <= index <= count and (text.strip() == "" or text.isascii())


@QUICK
@given(value=ANY_FLOAT)
def test_pixel_sizes_are_positive_and_finite_or_refused(value):
    try:
        found = MeasureSettings(["matrix", "particle"], pixel_size_um=value)
    except SettingsError as exc:
        assert "pixel size" in str(exc)
        return
    assert math.isfinite(found.pixel_size_um) and found.pixel_size_um > 0


BASE = CleanupRules(
    ["matrix", "particle"], 0, {rule: {"particle": 5} for rule in RULES}, {"small_regions": ["particle"]}
)


@QUICK
@given(
    setting=st.text(max_size=30)
    | st.builds(
        lambda r, c, v: f"{r}.{c}={v}",
        st.sampled_from([*RULES, "nope"]),
        st.sampled_from(["matrix", "particle", "x"]),
        st.text(max_size=6),
    )  # fmt: skip
)
def test_cleanup_changes_are_applied_or_refused(setting):
    try:
        changed = overridden(BASE, [setting])
    except SettingsError as exc:
        assert "--cleanup" in str(exc)
        return
    assert changed is None or all(limit >= 1 for limits in changed.limits.values() for limit in limits.values())


HOSTILE = (
    st.sampled_from(
        [
            math.nan,
            math.inf,
            -math.inf,
            -1,
            -2.5,
            0,
            0.0,
            -0.0,
            1.7,
            10**30,
            1e300,
            2**63,
            "",
            "abc",
            "nan",
            "-1",
            [],
            [1.0],
            [math.nan],
            {},
            {"a": 1},
            True,
            False,
            None,
        ]
    )  # fmt: skip
    | st.floats()
    | st.integers()
    | st.text(max_size=8)
)
"""What a careless or hostile user (or a hand-edited config.yaml) may put into any setting."""


def named(message: str, name: str) -> bool:
    return name in message or name.replace("_", "-") in message


def config_fields(config_class) -> list:
    return [(config_class, item.name) for item in dataclasses.fields(config_class)]


@pytest.mark.parametrize("config_class, name", config_fields(TrainConfig) + config_fields(PretrainConfig))
@QUICK
@given(value=HOSTILE)
def test_every_setting_takes_any_value_or_refuses_it_by_name(config_class, name, value):
    """Every field of both configurations, any value: a SettingsError naming the field, or a configuration whose
    numbers are finite and which survives its own config.yaml (what --resume reads back) unchanged."""
    base = {"recipe": "fast"} if config_class is TrainConfig and name != "recipe" else {}
    try:
        config = config_class(**{**base, name: value})
    except SettingsError as exc:
        assert named(str(exc), name), str(exc)
        return
    for item in dataclasses.fields(config):
        kept = getattr(config, item.name)
        assert not isinstance(kept, float) or math.isfinite(kept), (item.name, kept)
    saved = yaml.safe_load(yaml.safe_dump(dataclasses.asdict(config)))
    assert config_class(**saved) == config


def description(**changes) -> dict:
    data = {"name": "alloy", "classes": ["matrix", "particle"], "background": "matrix",
            "mask": {"encoding": "index", "values": {"matrix": 0, "particle": 1}, "ignore": 255, "suffix": "_m"},
            "splits": {"train": {"images": "img", "masks": "msk"}}, "pixel_size_um": 0.01,
            "class_colours": {"matrix": "#000000", "particle": "#ff0000"}}  # fmt: skip
    for key, value in changes.items():
        if key.startswith("mask."):
            data["mask"][key.removeprefix("mask.")] = value
        else:
            data[key] = value
    return data


DESCRIPTION_KEYS = [*TOP_LEVEL_KEYS, *(f"mask.{key}" for key in MASK_KEYS)]


@pytest.mark.parametrize("key", DESCRIPTION_KEYS)
@QUICK
@given(value=HOSTILE)
def test_every_description_field_takes_any_value_or_refuses_it_by_name(key, value, tmp_path_factory):
    """Each key of a dataset description, any value: an error naming the key (one line, no traceback), or a
    description that saves and loads back to itself."""
    folder = tmp_path_factory.mktemp("d")
    try:
        found = DatasetDescription.from_dict(description(**{key: value}), base=folder)
    except CsunetError as exc:
        assert named(str(exc), key.removeprefix("mask.")), str(exc)
        return
    assert found.pixel_size_um is None or math.isfinite(found.pixel_size_um) and found.pixel_size_um > 0
    found.save(folder / "dataset.yaml")
    again = DatasetDescription.load(folder / "dataset.yaml")
    assert (again.classes, again.background, again.pixel_size_um) == (found.classes, found.background,
                                                                      found.pixel_size_um)  # fmt: skip


def test_what_yaml_reads_as_numbers_is_taken_as_meant_and_wrong_types_are_named():
    config = TrainConfig.from_dict({"recipe": "fast", "patience": 5.0, "name": 2024, "devices": 1})
    assert (config.patience, config.name, config.devices) == (5, "2024", "1")
    with pytest.raises(SettingsError, match=r"patience must be a whole number, not '5'"):
        TrainConfig(recipe="fast", patience="5")
    with pytest.raises(SettingsError, match=r"class_weights must be text or a list of numbers or none, not \{\}"):
        TrainConfig(recipe="fast", class_weights={})
    with pytest.raises(SettingsError, match=r"unknown depth preset 'deep'"):
        PretrainConfig(depths="deep")

"""Property tests (Hypothesis) of the one validation layer: whatever number or text a user gives a setting, it is
either accepted as a finite value in range or refused with a SettingsError naming the setting; never another
exception, never a NaN that slips through."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csunet.cleanup import RULES, CleanupRules, overridden
from csunet.errors import SettingsError
from csunet.morphometry import MeasureSettings
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

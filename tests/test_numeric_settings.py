"""Every number a user can set is checked for NaN and infinity as well as its range: every comparison with NaN is
false, so a range check alone lets it through (issue 27's first root). Each numeric field of the training and
pretraining configurations, given NaN, +inf or -inf, is refused with an error naming it."""

import dataclasses
import math

import pytest

from csunet.errors import SettingsError, check_range
from csunet.pretrain.config import PretrainConfig
from csunet.train import TrainConfig


def numeric_fields(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.type.split(" | ")[0] in ("int", "float")]


CASES = [(cls, name, value) for cls in (TrainConfig, PretrainConfig) for name in numeric_fields(cls)
         for value in (math.nan, math.inf, -math.inf)]  # fmt: skip


def test_the_numeric_fields_are_found():
    assert {"lr", "max_minutes", "val_overlap", "grad_clip", "class_temperature", "seed"} <= set(
        numeric_fields(TrainConfig)
    )
    assert {"lr", "weight_decay", "img_size", "seed"} <= set(numeric_fields(PretrainConfig))


@pytest.mark.parametrize(("cls", "name", "value"), CASES, ids=[f"{c.__name__}.{n}={v}" for c, n, v in CASES])
def test_nan_and_infinity_are_refused_by_name(cls, name, value):
    with pytest.raises(SettingsError, match=rf"\b{name}\b must be"):
        cls(**{name: value})


def test_check_range_itself():
    check_range("x", "rate", 0.5, 0, 1)
    for bad in (math.nan, math.inf):
        with pytest.raises(SettingsError, match="rate must be a finite number"):
            check_range("x", "rate", bad, 0, 1)
    with pytest.raises(SettingsError, match=r"seed must be in \[0, 4294967295\], not -1"):
        TrainConfig(seed=-1)

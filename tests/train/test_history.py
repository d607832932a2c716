"""The training curves mark a stage switch of the learning rate, not every step of a schedule."""

import math

from csunet.train.history import plot_curves, rate_switches


def test_only_stage_switches_are_marked():
    two_stage = [{"epoch": e, "lr": 2e-4 if e < 5 else 1e-5, "train_loss": 1 / (e + 1)} for e in range(9)]
    assert rate_switches(two_stage) == [5]
    cosine = [
        {"epoch": e, "lr": 4e-4 * 0.5 * (1 + math.cos(math.pi * e / 18)), "train_loss": 1.0} for e in range(18)
    ]
    assert rate_switches(cosine) == []
    assert plot_curves(cosine, ("train_loss",), "loss").startswith(b"\x89PNG")

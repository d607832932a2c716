"""Where training runs, as Lightning takes it: one list of choices for training and pretraining, checked when a
configuration is built rather than minutes later when the trainer starts."""

from __future__ import annotations

import re

from csunet.errors import SettingsError, check_choice

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")
DEVICES = re.compile(r"auto|-1|\d+|\[?\d+(,\s*\d+)*,?\]?", re.ASCII)
"""What Lightning takes for devices: auto, -1 (all), a count, or a list of device numbers."""


def check_hardware(accelerator: str, devices: str, precision: str) -> None:
    check_choice("accelerator", accelerator, ACCELERATORS)
    check_choice("precision", precision, PRECISIONS)
    if not DEVICES.fullmatch(str(devices)) or str(devices) in ("0", "-0"):
        raise SettingsError(
            f"--devices {devices!r}: auto, a count of at least 1, -1 for all, or a list of device numbers such as 0,1"
        )

"""The demo: what `make demo` runs on the bundled sample."""

from __future__ import annotations

from collections.abc import Callable

from csunet.data import dataset_info, sample_description


def run_demo(show: Callable[[dict], None] = print) -> dict:
    """Summarise the bundled Super-1 sample and hand the report to ``show``."""
    report = dataset_info(sample_description())
    show(report)
    return report

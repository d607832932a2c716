"""The demo: what `make demo` runs. Trains a real CS-UNet from scratch on the bundled sample (NASA Super-1) with the
fast recipe for a fixed number of optimiser steps (so a slower machine gets the same training, only later; the
minutes are a cap), evaluates the best checkpoint on the four test images, segments them, and says where everything
is."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from csunet.errors import CsunetError
from csunet.runs import RunFolder
from csunet.train.config import TrainConfig
from csunet.train.recipes import SMALL_MODEL

DEMO_STEPS = 600
"""Optimiser steps of the demo's training (batches of 4 crops of 128x128, about ten validations): 5-7 minutes on our
2-core machines."""
DEMO_MINUTES = 9.0
"""A cap on the training time, reached only on a machine much slower than ours: with the ~2-4 minute first install,
evaluation, prediction and the report, `make demo` stays within 15 minutes."""


def demo_config(out: str | Path = "runs", minutes: float = DEMO_MINUTES, steps: int = DEMO_STEPS) -> TrainConfig:
    """The small CS-UNet made for CPUs (``SMALL_MODEL``), batch 4, the fast recipe (128x128 crops)."""
    return TrainConfig(
        data="sample",
        **SMALL_MODEL,
        recipe="fast",
        batch_size=4,
        max_steps=steps,
        max_minutes=minutes,
        out=str(out),
    )


def run_demo(
    show_data: Callable[[dict], None],
    show_metrics: Callable[[dict, str], None],
    show_measurements: Callable[[dict], None],
    say: Callable[[str], None] = print,
    out: str | Path = "runs",
    minutes: float = DEMO_MINUTES,
    steps: int = DEMO_STEPS,
) -> dict:
    """Data summary, training, test metrics with error panels, predictions; returns the paths and numbers."""
    from csunet.data import dataset_info, sample_description, sample_root  # the verbs load torch and Lightning,
    from csunet.predict import predict  # here, so that reading the demo's defaults (the CLI does) stays cheap
    from csunet.report import build_report
    from csunet.train import train

    show_data(dataset_info(sample_description()))
    config = demo_config(out, minutes, steps)
    say(
        f"training CS-UNet ({config.model_settings['encoder']} + {config.model_settings['depths']} Swin, embed "
        f"{config.model_settings['embed_dim']}) from "
        f"scratch with the fast recipe: {config.max_steps} steps of {config.batch_size} crops of "
        f"{config.tile_size}x{config.tile_size} (at most {minutes:g} minutes)"
    )
    summary = train(config)
    run_dir = Path(summary["run_dir"])
    if summary["best_checkpoint"] is None:
        raise CsunetError(f"{run_dir}: training stopped before its first validation; give it more --minutes")
    run = RunFolder(run_dir)
    test = json.loads(run.test_metrics.read_text())  # the run evaluated its best checkpoint on test
    if "error" in test:
        raise CsunetError(f"{run.test_metrics}: {test['error']}")
    say("test split of the sample (NASA Super-1):")
    show_metrics(test, f"best of {summary['epochs']} epochs ({summary['steps']} steps)")
    # four images: exporting for a faster engine would cost more than it saves; the overlap and flips the test split
    # was scored with, so that the saved and measured masks are those whose agreement with the truth was shown
    records = predict(summary["best_checkpoint"], [sample_root() / "test"], run.predictions, engine="torch",
                      overlap=config.val_overlap, tta=config.tta)  # fmt: skip
    report = build_report(run_dir, run.report, say)
    measured = json.loads((run.measurements / "summary.json").read_text())
    show_measurements(measured)
    say(f"run folder: {run_dir} (config, metrics.csv, loss.png, iou.png, checkpoints)")
    say(f"error panels: {run_dir / 'figures'}")
    say(f"masks and overlays: {run_dir / 'predictions'} (e.g. {records[0]['overlay']})")
    say(f"measurements (particles, area fractions): {run_dir / 'measurements'}")
    say(f"report, open it in a browser: {report}")
    return {"summary": summary, "test": test, "predictions": records, "measurements": measured, "report": report}

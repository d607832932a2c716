"""napari's "Train from strokes" from a blank start, timed, and its screenshot: the sample micrograph, strokes over
3 % of it (simulated from its true mask, as a user would paint them), Train with the default minutes, the first
segmentation. Writes the screenshot and benchmarks/results/napari_strokes.json (seconds from Train to the
segmentation shown, the CPU). Needs a display (``xvfb-run -a -s "-screen 0 1600x1000x24"`` on a server); run it
with nothing else on the machine.

    python scripts/napari_strokes.py docs/napari_strokes.png --project /tmp/strokes-project
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import napari
import numpy as np
from benchmarks.train_cpu import cpu_name
from qtpy.QtWidgets import QApplication

from csunet.data import load_description, pair_split
from csunet.data.masks import IGNORE_INDEX, read_mask
from csunet.data.scribbles import simulate_scribbles
from csunet.napari_plugin.io import sample_micrograph
from csunet.napari_plugin.labels import LABEL_OFFSET
from csunet.napari_plugin.widgets import StrokesWidget
from csunet.utils import atomic_write_text

RESULT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "napari_strokes.json"


def settle(seconds: float = 1.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--project", type=Path, required=True, help="a new folder for the strokes and models")
    parser.add_argument("--share", type=float, default=0.03)
    args = parser.parse_args()

    viewer = napari.Viewer(title="csunet in napari: train from strokes")
    viewer.window.resize(1600, 1000)
    data, kwargs, _ = sample_micrograph()[0]
    name = kwargs["name"]
    viewer.add_image(data, **kwargs)
    widget = StrokesWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train from strokes", area="right")
    widget.image.value = name
    widget.classes.value = "matrix, secondary, tertiary"
    layer = widget.add_strokes_layer()
    description = load_description("sample")
    truth_path = next(p for _, p in pair_split(description, "test").pairs if p.name.startswith(name))
    strokes = simulate_scribbles(read_mask(truth_path, description.encoding), args.share, seed=0)
    layer.data = np.where(strokes == IGNORE_INDEX, 0, strokes + LABEL_OFFSET).astype(np.uint8)
    widget.project.value = args.project
    widget.run.clicked.emit()
    deadline = time.monotonic() + 900
    while widget.work.worker is not None or widget.last_run is None:
        if time.monotonic() > deadline or widget.work.status.value.startswith("failed"):
            raise SystemExit(f"training did not finish: {widget.work.status.value}")
        QApplication.processEvents()
        time.sleep(0.05)
    run = widget.last_run
    viewer.layers[f"{name} segmentation"].opacity = 0.6
    settle()
    viewer.reset_view()
    settle(0.5)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(args.out), canvas_only=False, flash=False)
    record = {
        "cpu": cpu_name(),
        "measured": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "labelled_share": float((layer.data != 0).mean()),
        "minutes_asked": float(widget.minutes.value),
        "steps": run["steps"],
        "seconds_to_segmentation": run["seconds_to_segmentation"],
        "fit_to_strokes": run["best_val_iou"],
        "status": widget.work.status.value,
    }
    atomic_write_text(RESULT, json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))
    viewer.close()


if __name__ == "__main__":
    main()

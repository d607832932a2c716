"""The README's napari screenshot: the sample micrograph segmented with a checkpoint, the widgets docked and the
measurements shown. Needs a display (run it under ``xvfb-run -a -s "-screen 0 1600x1000x24"`` on a server).

    python scripts/napari_screenshot.py runs/<demo run>/checkpoints/best.ckpt docs/napari.png
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

from csunet.napari_plugin.io import sample_micrograph
from csunet.napari_plugin.widgets import CorrectWidget, MeasureWidget, SegmentWidget


def wait(condition, seconds: float = 600) -> None:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the widget did not finish in time")
        QApplication.processEvents()
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()

    viewer = napari.Viewer(title="csunet in napari")
    viewer.window.resize(1600, 1000)
    data, kwargs, _ = sample_micrograph()[0]
    viewer.add_image(data, **kwargs)
    segmenter, corrector, measurer = SegmentWidget(viewer), CorrectWidget(viewer), MeasureWidget(viewer)
    viewer.window.add_dock_widget(corrector, name="Correct and fine-tune", area="right")
    viewer.window.add_dock_widget(segmenter, name="Segment", area="right", tabify=True)
    viewer.window.add_dock_widget(measurer, name="Measure", area="right")
    segmenter.checkpoint.value, segmenter.engine.value = args.checkpoint, "torch"
    segmenter.image.value = kwargs["name"]
    segmenter.run.clicked.emit()
    wait(lambda: f"{kwargs['name']} segmentation" in viewer.layers and segmenter.work.worker is None)
    measurer.layer.reset_choices()
    measurer.layer.value = f"{kwargs['name']} segmentation"
    measurer.measure()
    viewer.layers[f"{kwargs['name']} segmentation particles"].visible = False
    viewer.layers.selection.active = viewer.layers[f"{kwargs['name']} segmentation"]
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.05)
    viewer.reset_view()  # fit the image to the canvas as docked
    for _ in range(10):
        QApplication.processEvents()
        time.sleep(0.05)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(args.out), canvas_only=False, flash=False)
    print(f"wrote {args.out}")
    viewer.close()


if __name__ == "__main__":
    main()

"""The plugin's dock widgets: Segment, Train from strokes, Correct and fine-tune, Measure.

Long work (segmenting, training) runs in a worker thread with a progress bar and a Cancel button; the viewer
stays responsive. Segmentation goes through the same functions as `csunet predict` (normalisation, tiling,
engines), so the Labels layer equals its mask. The widgets share what they know through the Labels layer's
``metadata["csunet"]``: the checkpoint, engine and settings that made it and the image layer it belongs to.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lightning.pytorch import Callback
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
    SpinBox,
    Table,
)
from napari.layers import Image, Labels
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info
from psygnal import Signal
from superqt.utils import ensure_main_thread

from csunet.checkpoint import CheckpointMeta
from csunet.data.description import DEFAULT_PALETTE
from csunet.data.io import to_float_image
from csunet.data.pixel_size import PixelSize, mismatch, pixel_size_from_file
from csunet.data.scale import MIN_SCALE
from csunet.errors import CsunetError
from csunet.export import ENGINES, load_engine
from csunet.inference import DEFAULT_TTA, MAX_OVERLAP, TTA_HELP, TTA_MODES, default_device
from csunet.measure import write_measurements
from csunet.morphometry import MeasureSettings, measure_masks, size_summary, summarise
from csunet.napari_plugin.labels import TrainingProject, labels_layer_kwargs, to_class_mask, to_layer_labels
from csunet.predictor import Predictor
from csunet.train.finetune import FINE_TUNE_STEPS, FIRST_MODEL_MINUTES, fine_tune_config, first_model_config

RECENT = 8
"""Checkpoints and project folders remembered."""
CHECKPOINT_FILTER = "*.ckpt *.onnx *.xml *.zip"


class Cancelled(Exception):
    """Raised in a worker when the user pressed Cancel."""


# ---------------------------------------------------------------- remembered choices


def settings_path() -> Path:
    """Where the widgets remember the last checkpoints and project folders (``$CSUNET_CONFIG_DIR`` or the user's
    configuration folder)."""
    from platformdirs import user_config_dir

    return Path(os.environ.get("CSUNET_CONFIG_DIR") or user_config_dir("csunet")) / "napari.json"


def remembered(key: str) -> list[str]:
    try:
        return [p for p in json.loads(settings_path().read_text()).get(key, []) if Path(p).exists()]
    except (OSError, ValueError):
        return []


def remember(key: str, value: str) -> None:
    from csunet.utils import atomic_write_text

    path = settings_path()
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        data = {}
    data[key] = [value, *[p for p in data.get(key, []) if p != value]][:RECENT]
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


# ---------------------------------------------------------------- segmentation shared by the widgets


@dataclass
class Segmentation:
    mask: np.ndarray
    uncertainty: np.ndarray | None
    meta: CheckpointMeta
    engine: str


def layer_image(layer) -> np.ndarray:
    """The 2-D (grey or RGB) array of an image layer, as `csunet predict` reads a file."""
    data = layer.data[0] if layer.multiscale else layer.data
    data = np.asarray(data)
    if data.ndim == 2 or (data.ndim == 3 and layer.rgb):
        return data
    raise CsunetError(
        f"layer {layer.name!r} has shape {data.shape}; segment a 2-D grey or RGB image (one slice of a stack)"
    )


def recorded_pixel_size(layer) -> PixelSize | None:
    """The pixel size the layer's file records (FEI, Zeiss, OME, ImageJ, TIFF resolution tags), if it came from
    one."""
    path = getattr(getattr(layer, "source", None), "path", None)
    return pixel_size_from_file(path) if path else None


def scale_from_file(layer) -> PixelSize | None:
    """Give an image layer opened at one unit per pixel the pixel size its file records (µm), and return it."""
    found = recorded_pixel_size(layer)
    if found is not None and all(float(v) == 1.0 for v in layer.scale[-2:]):
        layer.scale = (*layer.scale[:-2], found.um, found.um)
    return found


_engines: dict[tuple, object] = {}


def cached_engine(checkpoint: str, engine: str):
    """A loaded engine, kept while its file is unchanged (segmenting again does not reload or re-export)."""
    path = Path(checkpoint)
    key = (str(path.resolve()), engine, path.stat().st_mtime_ns)
    if key not in _engines:
        _engines.clear()
        _engines[key] = load_engine(path, engine, default_device())
    return _engines[key]


def segment_array(
    array: np.ndarray, name: str, checkpoint: str, engine: str, overlap: float, tta: str, uncertainty: bool,
    progress, cancel: threading.Event,
) -> Segmentation:  # fmt: skip
    """The class mask (and uncertainty) of one raw image array; runs in a worker thread."""
    image = to_float_image(array, name)
    loaded = cached_engine(checkpoint, engine)

    def on_batch(done: int, total: int) -> None:
        if cancel.is_set():
            raise Cancelled
        progress(done, total)

    prediction = Predictor.of(loaded, overlap, tta).predict_array(image, on_batch)
    entropy = prediction.uncertainty if uncertainty else None
    return Segmentation(prediction.mask, entropy, loaded.meta, loaded.engine)


def show_segmentation(viewer, image_layer, result: Segmentation, settings: dict, name: str):
    """Add (or replace) the Labels layer ``name`` with ``result``; its metadata records how it was made."""
    meta = result.meta
    kwargs = labels_layer_kwargs(meta.classes, meta.colours, name)
    kwargs["metadata"]["csunet"] |= {
        **settings,
        "image": image_layer.name,
        "background": meta.background,
        "pixel_size_um": settings.get("pixel_size_um") or meta.pixel_size_um,
        "engine_used": result.engine,
    }
    placement = {"scale": image_layer.scale, "translate": image_layer.translate}
    if name in viewer.layers:
        viewer.layers.remove(name)
    layer = viewer.add_labels(to_layer_labels(result.mask), **kwargs, **placement)
    if result.uncertainty is not None:
        uncertainty_name = f"{image_layer.name} uncertainty"
        if uncertainty_name in viewer.layers:
            viewer.layers.remove(uncertainty_name)
        viewer.add_image(result.uncertainty, name=uncertainty_name, colormap="magma", contrast_limits=(0, 1),
                         visible=False, **placement)  # fmt: skip
    return layer


class _Worker:
    """Progress bar, status line and Cancel button around one worker thread at a time; ``done`` is emitted
    when it has ended (finished, failed or cancelled)."""

    done = Signal()

    def __init__(self, container: Container, action: PushButton) -> None:
        self.action = action
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=100, label="progress")
        self.status = Label(value="")
        self.status.native.setWordWrap(True)  # a long status line wraps instead of widening the dock
        self.cancel_event = threading.Event()
        self.cancel_button.changed.connect(self.cancel_event.set)
        self.worker = None
        container.extend([self.cancel_button, self.progress, self.status])

    @ensure_main_thread
    def report(self, done: int, total: int, text: str = "") -> None:
        self.progress.max = max(total, 1)
        self.progress.value = min(done, total)
        if text:
            self.status.value = text

    def start(self, function, on_done, *args) -> None:
        self.cancel_event.clear()
        self.action.enabled, self.cancel_button.enabled = False, True
        self.progress.value = 0
        # errors are this widget's to show (_failed); napari would otherwise raise them again in the main thread
        self.worker = create_worker(function, *args, _start_thread=False, _ignore_errors=True)
        self.worker.returned.connect(on_done)
        self.worker.errored.connect(self._failed)
        self.worker.finished.connect(self._finished)
        self.worker.start()

    def _failed(self, error: Exception) -> None:
        if isinstance(error, Cancelled):
            self.status.value = "cancelled"
            return
        self.status.value = f"failed: {error}"
        show_error(f"csunet: {error}")

    def _finished(self) -> None:
        self.action.enabled, self.cancel_button.enabled = True, False
        self.worker = None
        self.done.emit()


def _layer_choices(viewer, kind: type, wanted=lambda layer: True):
    def choices(_widget=None) -> list[str]:
        return [layer.name for layer in viewer.layers if isinstance(layer, kind) and wanted(layer)]

    return choices


def _refresh_on_layer_changes(viewer, *combos: ComboBox) -> None:
    def refresh(_event=None) -> None:
        for combo in combos:
            combo.reset_choices()

    viewer.layers.events.inserted.connect(refresh)
    viewer.layers.events.removed.connect(refresh)
    viewer.layers.events.changed.connect(refresh)


def _is_segmentation(layer) -> bool:
    return "checkpoint" in layer.metadata.get("csunet", {})


def chosen_project(edit: FileEdit, what: str) -> TrainingProject:
    """The project folder chosen in ``edit`` (remembered for next time), or an error asking for one."""
    folder = str(edit.value)
    if folder in ("", "."):
        raise CsunetError(f"choose a project folder for {what}")
    remember("projects", str(Path(folder).resolve()))
    return TrainingProject(folder)


def safe_name(name: str) -> str:
    """A layer name as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "image"


# ---------------------------------------------------------------- Segment


class SegmentWidget(Container):
    """Segment the selected image layer with a checkpoint or an exported model."""

    def __init__(self, napari_viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        recent = remembered("checkpoints")
        self.image = ComboBox(label="image", choices=_layer_choices(napari_viewer, Image))
        self.checkpoint = FileEdit(label="model", mode="r", filter=CHECKPOINT_FILTER,
                                   value=recent[0] if recent else "")  # fmt: skip
        self.checkpoint.tooltip = (
            "a checkpoint from `csunet train` (.ckpt), its export (.onnx, .openvino.xml) or a model bundle (.zip)"
        )
        self.recent = ComboBox(label="recent", choices=lambda _widget: remembered("checkpoints"),
                               value=recent[0] if recent else None, nullable=True)  # fmt: skip
        self.recent.changed.connect(lambda value: value and setattr(self.checkpoint, "value", value))
        self.engine = ComboBox(label="engine", choices=ENGINES, value="auto")
        self.engine.tooltip = ("auto: the fastest here (on a CPU it exports the checkpoint to OpenVINO once, tens of "
                               "seconds); torch: starts at once")  # fmt: skip
        self.overlap = FloatSpinBox(label="overlap", value=0.5, min=0.0, max=MAX_OVERLAP, step=0.05)
        self.tta = ComboBox(label="TTA", choices=TTA_MODES, value=DEFAULT_TTA, tooltip=TTA_HELP)
        self.uncertainty = CheckBox(text="add the uncertainty as an image layer", value=False)
        self.run = PushButton(text="Segment")
        self.extend([self.image, self.checkpoint, self.recent, self.engine, self.overlap, self.tta,
                     self.uncertainty, self.run])  # fmt: skip
        self.work = _Worker(self, self.run)
        self.run.changed.connect(self.segment)
        _refresh_on_layer_changes(napari_viewer, self.image)

    def settings(self) -> dict:
        return {"checkpoint": str(self.checkpoint.value), "engine": self.engine.value,
                "overlap": float(self.overlap.value), "tta": self.tta.value}  # fmt: skip

    def segment(self) -> None:
        if not self.image.value:
            show_error("csunet: open an image first (File > Open, or File > Open Sample > csunet)")
            return
        settings = self.settings()
        if not Path(settings["checkpoint"]).is_file():
            show_error(f"csunet: choose a model file; {settings['checkpoint']!r} does not exist")
            return
        remember("checkpoints", str(Path(settings["checkpoint"]).resolve()))
        self.recent.reset_choices()
        layer = self.viewer.layers[self.image.value]
        try:
            array = layer_image(layer)
        except CsunetError as exc:
            show_error(f"csunet: {exc}")
            return
        self.work.status.value = f"segmenting {layer.name} ..."
        started = time.monotonic()
        recorded = scale_from_file(layer)
        if recorded is not None:
            settings["pixel_size_um"] = recorded.um

        def done(result: Segmentation) -> None:
            show_segmentation(self.viewer, layer, result, settings, f"{layer.name} segmentation")
            status = f"{layer.name}: {time.monotonic() - started:.1f} s with {result.engine}"
            if recorded is not None:
                status += f"; {recorded.describe()}"
                problem = mismatch(recorded.um, result.meta.pixel_size_um)
                if problem:
                    show_info(f"csunet: {layer.name}: {problem}")
            self.work.status.value = status

        self.work.start(segment_array, done, array, layer.name, settings["checkpoint"], settings["engine"],
                        settings["overlap"], settings["tta"], self.uncertainty.value, self.work.report,
                        self.work.cancel_event)  # fmt: skip


# ---------------------------------------------------------------- Correct and fine-tune


class _TrainingReport(Callback):
    """Tells the widget the step and loss after every optimiser step, the progress counted in steps (``total``)
    or, for a budget in minutes, in seconds; stops training when Cancel was pressed."""

    def __init__(self, report, cancel: threading.Event, total: int | None = None, minutes: float | None = None):
        self.report, self.cancel, self.total, self.minutes = report, cancel, total, minutes
        self.cancelled = False
        self.started = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"].item() if isinstance(outputs, dict) else float(outputs)
        step = trainer.global_step
        if self.total:
            self.report(step, self.total, f"step {step}/{self.total}, loss {loss:.4f}")
        else:
            elapsed, budget = time.monotonic() - self.started, 60 * (self.minutes or 0)
            self.report(int(elapsed), int(budget), f"step {step}, {elapsed:.0f}/{budget:.0f} s, loss {loss:.4f}")
        if self.cancel.is_set():
            self.cancelled = trainer.should_stop = True


def _train_and_segment(config, report: _TrainingReport, work: _Worker, image: np.ndarray, image_name: str,
                       engine: str, overlap: float, tta: str):  # fmt: skip
    """Train as ``config`` says, then segment ``image`` with the best checkpoint; runs in a worker thread."""
    from csunet.train import train

    summary = train(config, progress=False, callbacks=[report])
    if report.cancelled:
        raise Cancelled
    best = summary.get("best_checkpoint")
    if not best:
        raise CsunetError("training finished no epoch, so it wrote no checkpoint")
    work.report(0, 1, f"segmenting {image_name} with the new model ...")
    result = segment_array(image, image_name, best, engine, overlap, tta, False, work.report, work.cancel_event)
    return summary, result


# ---------------------------------------------------------------- Train from strokes


def parse_classes(text: str) -> list[str]:
    """Class names typed as a comma-separated list; at least two, none repeated."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if len(names) < 2 or len(set(names)) != len(names):
        raise CsunetError(f"type at least two different class names, separated by commas (not {text!r})")
    return names


def stroke_colours(count: int) -> list[tuple[int, int, int]]:
    """Class colours that show on a grey micrograph (the palette without its black)."""
    return [DEFAULT_PALETTE[1 + index % (len(DEFAULT_PALETTE) - 1)] for index in range(count)]


class StrokesWidget(Container):
    """A first model from nothing: paint a few strokes of each class on an image, press Train, and a segmentation
    appears (about two minutes on a 2-core CPU); paint more strokes where it is wrong and Train again, which goes
    on from the last model. Every round is saved in the project folder (image, strokes, dataset.yaml, runs/), which
    `csunet train --data FOLDER` reads too."""

    def __init__(self, napari_viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        projects = remembered("projects")
        self.image = ComboBox(label="image", choices=_layer_choices(napari_viewer, Image))
        self.classes = LineEdit(label="classes", value="matrix, precipitate")
        self.classes.tooltip = "class names, separated by commas; the first is the background (matrix)"
        self.new_layer = PushButton(text="New strokes layer")
        self.project = FileEdit(label="project", mode="d", value=projects[0] if projects else "")
        self.project.tooltip = "folder for the image, its strokes and the models (made when missing)"
        self.minutes = FloatSpinBox(label="minutes", value=FIRST_MODEL_MINUTES, min=0.05, max=10_000.0, step=0.25)
        self.minutes.tooltip = "training time per round"
        self.scale = FloatSpinBox(label="scale", value=0.0, min=0.0, max=1.0, step=0.05)
        self.scale.tooltip = (
            "work on the image shrunk by this factor (first round; later rounds keep the model's): 0 guesses it "
            "from the strokes (a pixel classifier grows them into regions; where even the narrowest class's are "
            f"wide, e.g. a layer 180 pixels thick, about 0.35); or give one from {MIN_SCALE:g} to 1"
        )
        self.run = PushButton(text="Train")
        self.extend([self.image, self.classes, self.new_layer, self.project, self.minutes, self.scale, self.run])
        self.work = _Worker(self, self.run)
        self.last_run: dict | None = None
        self.new_layer.changed.connect(self.add_strokes_layer)
        self.run.changed.connect(self.train)
        _refresh_on_layer_changes(napari_viewer, self.image)

    def strokes_name(self) -> str:
        return f"{self.image.value} strokes"

    def add_strokes_layer(self):
        """An empty Labels layer over the chosen image, one label per class, ready to paint with label 1."""
        try:
            if not self.image.value:
                raise CsunetError("open an image first (File > Open, or File > Open Sample > csunet)")
            classes = parse_classes(self.classes.value)
        except CsunetError as exc:
            show_error(f"csunet: {exc}")
            return None
        image_layer = self.viewer.layers[self.image.value]
        shape = layer_image(image_layer).shape[:2]
        name = self.strokes_name()
        if name in self.viewer.layers:
            self.viewer.layers.remove(name)
        kwargs = labels_layer_kwargs(classes, stroke_colours(len(classes)), name)
        kwargs["metadata"]["csunet"] |= {"image": image_layer.name, "strokes": True}
        layer = self.viewer.add_labels(np.zeros(shape, np.uint8), **kwargs, scale=image_layer.scale,
                                       translate=image_layer.translate)  # fmt: skip
        layer.brush_size, layer.selected_label, layer.mode = 5, 1, "paint"
        self.work.status.value = f"paint labels 1-{len(classes)} ({', '.join(classes)}); 0 erases"
        return layer

    def previous_model(self, project: TrainingProject) -> Path | None:
        """The best checkpoint of the project's latest round, if any."""
        found = sorted(project.folder.glob("runs/*/checkpoints/best.ckpt"), key=lambda p: p.stat().st_mtime)
        return found[-1] if found else None

    def train(self) -> None:
        try:
            if self.strokes_name() not in self.viewer.layers:
                raise CsunetError("press 'New strokes layer' and paint a few strokes of every class first")
            strokes = self.viewer.layers[self.strokes_name()]
            info = strokes.metadata["csunet"]
            project = chosen_project(self.project, "the strokes and the models")
            image_layer = self.viewer.layers[info["image"]]
            image = layer_image(image_layer)
            painted = {int(v) for v in np.unique(strokes.data)} - {0}
            if len(painted) < 2:
                raise CsunetError("paint strokes of at least two classes before training")
            path = project.add(safe_name(image_layer.name), image, strokes.data, info["classes"], info["colours"])
        except (CsunetError, KeyError) as exc:
            show_error(f"csunet: {exc}")
            return
        minutes = float(self.minutes.value)
        previous = self.previous_model(project)
        name = time.strftime("strokes-%Y%m%d-%H%M%S")
        runs = project.folder / "runs"
        config = (
            first_model_config(path, runs, name, minutes, float(self.scale.value) or None)
            if previous is None
            else fine_tune_config(previous, path, runs, name, max_steps=0, max_minutes=minutes)
        )
        started = time.monotonic()
        self.work.status.value = "training a first model ..." if previous is None else "training on ..."
        report = _TrainingReport(self.work.report, self.work.cancel_event, minutes=minutes)

        def done(outcome) -> None:
            summary, result = outcome
            settings = {
                "checkpoint": summary["best_checkpoint"],
                "engine": "torch",
                "overlap": 0.5,
                "tta": DEFAULT_TTA,
            }
            show_segmentation(self.viewer, image_layer, result, settings, f"{image_layer.name} segmentation")
            self.viewer.layers.move(self.viewer.layers.index(strokes), len(self.viewer.layers))
            self.viewer.layers.selection.active = strokes  # paint more strokes straight away
            remember("checkpoints", str(Path(summary["best_checkpoint"]).resolve()))
            self.last_run = summary | {"seconds_to_segmentation": round(time.monotonic() - started, 1)}
            self.work.status.value = (
                f"{summary['steps']} steps, segmented {time.monotonic() - started:.0f} s after Train; fit to the "
                f"strokes (NASA IoU) {summary['best_val_iou']:.3f}; model in {Path(summary['run_dir']).name}"
            )

        self.work.start(_train_and_segment, done, config, report, self.work, image, image_layer.name, "torch", 0.5,
                        "none")  # fmt: skip


class CorrectWidget(Container):
    """Paint corrections into a segmentation, save them as training pairs, fine-tune on them, segment again.

    Label 0 (napari's eraser) is unlabelled: those pixels are left out of training, so a user may erase what
    they are unsure of and paint only what they know.
    """

    def __init__(self, napari_viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        projects = remembered("projects")
        self.layer = ComboBox(
            label="segmentation", choices=_layer_choices(napari_viewer, Labels, _is_segmentation)
        )
        self.project = FileEdit(label="project", mode="d", value=projects[0] if projects else "")
        self.project.tooltip = "folder of corrected image/label pairs and their dataset.yaml (made when missing)"
        self.add = PushButton(text="Add to training set")
        self.pairs = Label(value="")
        self.steps = SpinBox(label="steps", value=FINE_TUNE_STEPS, min=1, max=100_000)
        self.minutes = FloatSpinBox(label="minutes", value=0.0, min=0.0, max=10_000.0, step=1.0)
        self.minutes.tooltip = "a cap on training time (0: none); training stops at whichever comes first"
        self.run = PushButton(text="Fine-tune")
        self.extend([self.layer, self.project, self.add, self.pairs, self.steps, self.minutes, self.run])
        self.work = _Worker(self, self.run)
        self.last_run: dict | None = None
        self.add.changed.connect(self.add_to_training_set)
        self.run.changed.connect(self.fine_tune)
        _refresh_on_layer_changes(napari_viewer, self.layer)

    def _chosen(self):
        if not self.layer.value:
            raise CsunetError("segment an image first (Segment widget); its Labels layer is what you correct")
        layer = self.viewer.layers[self.layer.value]
        return layer, layer.metadata["csunet"]

    def _project(self) -> TrainingProject:
        return chosen_project(self.project, "the corrected pairs")

    def add_to_training_set(self) -> Path | None:
        try:
            layer, info = self._chosen()
            project = self._project()
            image = layer_image(self.viewer.layers[info["image"]])
            path = project.add(safe_name(info["image"]), image, layer.data, info["classes"], info["colours"],
                               info.get("background", 0), info.get("pixel_size_um"))  # fmt: skip
        except (CsunetError, KeyError) as exc:
            show_error(f"csunet: {exc}")
            return None
        self.pairs.value = f"{len(project.pairs())} pairs in {project.folder.name}"
        show_info(f"csunet: saved {info['image']} and its labels to {project.folder}")
        return path

    def fine_tune(self) -> None:
        try:
            layer, info = self._chosen()
            project = self._project()
            if not project.description_path.is_file():
                raise CsunetError(f"{project.folder} holds no pairs yet: press 'Add to training set' first")
            image_layer = self.viewer.layers[info["image"]]
            image = layer_image(image_layer)
        except (CsunetError, KeyError) as exc:
            show_error(f"csunet: {exc}")
            return
        checkpoint = info["checkpoint"]
        if Path(checkpoint).suffix != ".ckpt":
            show_error(f"csunet: fine-tuning needs a training checkpoint (.ckpt), not {Path(checkpoint).name}")
            return
        steps, minutes = int(self.steps.value), float(self.minutes.value) or None
        name = time.strftime("finetune-%Y%m%d-%H%M%S")
        config = fine_tune_config(checkpoint, project.description_path, project.folder / "runs", name, steps,
                                  minutes)  # fmt: skip
        self.work.status.value = "fine-tuning ..."

        report = _TrainingReport(self.work.report, self.work.cancel_event, steps)

        def done(outcome) -> None:
            summary, result = outcome
            settings = {
                **{k: info[k] for k in ("engine", "overlap", "tta")},
                "checkpoint": summary["best_checkpoint"],
            }
            show_segmentation(self.viewer, image_layer, result, settings, f"{image_layer.name} fine-tuned")
            remember("checkpoints", str(Path(summary["best_checkpoint"]).resolve()))
            self.last_run = summary
            self.work.status.value = (f"{summary['steps']} steps, best fit to the pairs (NASA IoU) "
                                      f"{summary['best_val_iou']:.3f}; new model in {Path(summary['run_dir']).name}")  # fmt: skip

        self.work.start(_train_and_segment, done, config, report, self.work, image, image_layer.name,
                        info["engine"], info["overlap"], info["tta"])  # fmt: skip


# ---------------------------------------------------------------- Measure


class MeasureWidget(Container):
    """`csunet measure` on a Labels layer: the summary table, particles as a Points layer, CSV files."""

    def __init__(self, napari_viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.layer = ComboBox(label="labels", choices=_layer_choices(napari_viewer, Labels, _is_segmentation))
        self.layer.changed.connect(self._pixel_size_from_layer)
        self.pixel_size = FloatSpinBox(label="µm / pixel", value=0.0, min=0.0, max=1e6, step=0.001)
        self.pixel_size.tooltip = "0: unknown, lengths in pixels; taken from the layer's scale when it has one"
        self.min_size = SpinBox(label="min size (px)", value=MeasureSettings.min_size_px, min=1, max=1_000_000)
        self.include_border = CheckBox(text="size particles that touch the border", value=False)
        self.run = PushButton(text="Measure")
        self.table = Table(value=[])
        self.table.min_height = 150
        self.out = FileEdit(label="CSV folder", mode="d", value="")
        self.save = PushButton(text="Save CSV")
        self.extend([self.layer, self.pixel_size, self.min_size, self.include_border, self.run, self.table,
                     self.out, self.save])  # fmt: skip
        self.collected: dict | None = None
        self.measured_settings: MeasureSettings | None = None
        self.run.changed.connect(self.measure)
        self.save.changed.connect(self.save_csv)
        _refresh_on_layer_changes(napari_viewer, self.layer)
        self._pixel_size_from_layer()

    def _pixel_size_from_layer(self, _value=None) -> None:
        if not self.layer.value:
            return
        layer = self.viewer.layers[self.layer.value]
        scale = float(layer.scale[-1])
        known = layer.metadata.get("csunet", {}).get("pixel_size_um")
        self.pixel_size.value = known or (scale if scale != 1.0 else 0.0)

    def settings(self, info: dict) -> MeasureSettings:
        return MeasureSettings(info["classes"], float(self.pixel_size.value) or None, int(self.min_size.value),
                               bool(self.include_border.value), background=info.get("background", 0))  # fmt: skip

    def measure(self) -> dict | None:
        if not self.layer.value:
            show_error("csunet: segment an image first; measure works on its Labels layer")
            return None
        layer = self.viewer.layers[self.layer.value]
        info = layer.metadata["csunet"]
        settings = self.settings(info)
        mask = to_class_mask(np.asarray(layer.data), len(info["classes"]))
        name = info.get("image", layer.name)
        self.collected, self.measured_settings = measure_masks({name: mask}, settings), settings
        summary = summarise(self.collected["images"], self.collected["particles"], settings)
        self.table.value = {
            "data": [[entry["kind"], f"{entry['area_fraction_mean']:.2%}", entry.get("count", ""),
                      size_summary(entry, settings.unit)] for entry in summary.values()],
            "index": list(summary),
            "columns": ["kind", "area fraction", "count", "sizes"],
        }  # fmt: skip
        self.table.native.resizeColumnsToContents()
        self._show_particles(layer, settings)
        return summary

    def _show_particles(self, layer, settings: MeasureSettings) -> None:
        name = f"{layer.name} particles"
        if name in self.viewer.layers:
            self.viewer.layers.remove(name)
        particles = self.collected["particles"]
        if not particles:
            return
        unit = settings.unit
        centres = [[p[f"centroid_y_{unit}"] / settings.scale, p[f"centroid_x_{unit}"] / settings.scale]
                   for p in particles]  # fmt: skip
        features = {key: [p[key] for p in particles] for key in particles[0]}
        self.viewer.add_points(np.array(centres), name=name, features=features, size=4, face_color="white",
                               scale=layer.scale, translate=layer.translate)  # fmt: skip

    def save_csv(self) -> dict | None:
        if self.collected is None:
            show_error("csunet: press Measure first")
            return None
        folder = str(self.out.value)
        if folder in ("", "."):
            show_error("csunet: choose a folder for the CSV files")
            return None
        summary = write_measurements(self.collected, self.measured_settings, folder)
        show_info(f"csunet: measurements saved to {folder}")
        return summary

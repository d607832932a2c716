"""The napari plugin in a real viewer (Qt on Xvfb): segment as `csunet predict` does, correct and fine-tune,
cancel, measure as `csunet measure` does, read and write masks, open the sample."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

napari = pytest.importorskip("napari", reason="the napari extra is not installed: pip install -e '.[napari]'")

from csunet.checkpoint import load_checkpoint  # noqa: E402
from csunet.data import get_task, sample_root  # noqa: E402
from csunet.data.dataset import pair_split  # noqa: E402
from csunet.data.io import read_array  # noqa: E402
from csunet.inference import DEFAULT_TTA  # noqa: E402
from csunet.measure import measure  # noqa: E402
from csunet.napari_plugin.io import get_reader, write_labels  # noqa: E402
from csunet.napari_plugin.labels import LABEL_OFFSET  # noqa: E402
from csunet.napari_plugin.widgets import CorrectWidget, MeasureWidget, SegmentWidget  # noqa: E402
from csunet.predict import predict  # noqa: E402

WAIT_MS = 180_000


@pytest.fixture(autouse=True)
def private_settings(tmp_path, monkeypatch):
    """The widgets remember choices in a folder of the test's own, not the user's."""
    monkeypatch.setenv("CSUNET_CONFIG_DIR", str(tmp_path / "config"))


@pytest.fixture
def checkpoint(tiny_run, tmp_path) -> Path:
    copy = tmp_path / "model" / "best.ckpt"
    copy.parent.mkdir()
    shutil.copy2(tiny_run["best_checkpoint"], copy)
    return copy


def sample_variants(folder: Path) -> dict[str, Path]:
    """The first sample test image (grey stored as RGB, as NASA ships it) as it is, as 8-bit and 16-bit grey,
    and as a colour image."""
    stored = read_array(sorted((sample_root() / "test").iterdir())[0])
    assert stored.dtype == np.uint8 and stored.shape[2] == 3
    grey = stored[..., 0]
    folder.mkdir()
    variants = {"grey8": grey, "grey16": grey.astype(np.uint16) * 257 + np.uint16(100), "grey_as_rgb": stored,
                "colour": np.stack([grey, grey // 2, 255 - grey], axis=-1)}  # fmt: skip
    for name, array in variants.items():
        tifffile.imwrite(folder / f"{name}.tif", array)
    return {name: folder / f"{name}.tif" for name in variants}


def segment(qtbot, widget: SegmentWidget, layer_name: str):
    widget.image.value = layer_name
    with qtbot.waitSignal(widget.work.done, timeout=WAIT_MS):
        widget.run.clicked.emit()


def test_segment_widget_gives_predicts_masks(make_viewer, qtbot, checkpoint, tmp_path):
    viewer = make_viewer()
    files = sample_variants(tmp_path / "images")
    # one pass per tile on both sides; the widget's TTA box starts at predict's default
    records = predict(checkpoint, list(files.values()), tmp_path / "predicted", engine="torch", tta="none",
                      progress=False)  # fmt: skip
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget)
    assert widget.tta.value == DEFAULT_TTA
    widget.checkpoint.value = checkpoint
    widget.engine.value, widget.tta.value = "torch", "none"
    widget.uncertainty.value = True
    for (name, path), record in zip(files.items(), records):
        viewer.add_image(read_array(path), name=name, rgb=read_array(path).ndim == 3)
        segment(qtbot, widget, name)
        labels = viewer.layers[f"{name} segmentation"]
        expected = read_array(record["mask"])
        assert np.array_equal(labels.data, expected + LABEL_OFFSET), name  # identical to `csunet predict`
        assert list(labels.features["class"]) == ["unlabelled", "matrix", "secondary", "tertiary"]
        info = labels.metadata["csunet"]
        assert info["checkpoint"] == str(checkpoint) and info["image"] == name and info["engine_used"] == "torch"
        uncertainty = viewer.layers[f"{name} uncertainty"].data
        assert uncertainty.shape == expected.shape and uncertainty.min() >= 0 and uncertainty.max() <= 1
    # grey stored as RGB is read as grey, as from a file; the colour image is another picture altogether
    masks = {name: viewer.layers[f"{name} segmentation"].data for name in files}
    assert np.array_equal(masks["grey8"], masks["grey_as_rgb"])
    assert not np.array_equal(masks["grey8"], masks["colour"])
    assert str(checkpoint.resolve()) in widget.recent.choices
    assert SegmentWidget(viewer).checkpoint.value == checkpoint.resolve()  # remembered for next time


def test_correct_fine_tune_and_segment_again(make_viewer, qtbot, checkpoint, tmp_path):
    viewer = make_viewer()
    image = read_array(sorted((sample_root() / "test").iterdir())[0])
    viewer.add_image(image, name="micrograph")
    segmenter, corrector = SegmentWidget(viewer), CorrectWidget(viewer)
    viewer.window.add_dock_widget(segmenter)
    viewer.window.add_dock_widget(corrector)
    segmenter.checkpoint.value, segmenter.engine.value = checkpoint, "torch"
    segment(qtbot, segmenter, "micrograph")
    labels = viewer.layers["micrograph segmentation"]
    before = labels.data.copy()

    # paint: a band of tertiary (label 3) across the top, the rest erased but for a band of matrix (label 1)
    painted = np.zeros_like(before)
    painted[:96] = 3
    painted[-96:] = 1
    labels.data = painted
    project = tmp_path / "project"
    corrector.layer.value = "micrograph segmentation"
    corrector.project.value = project
    assert corrector.add_to_training_set() == project / "dataset.yaml"
    assert np.array_equal(read_array(project / "masks" / "micrograph_labels.png"), painted)

    corrector.steps.value = 40
    with qtbot.waitSignal(corrector.work.done, timeout=WAIT_MS):
        corrector.run.clicked.emit()
    summary = corrector.last_run
    assert summary is not None, corrector.work.status.value
    assert summary["steps"] == 40 and summary["stopped_by"] == "step budget"
    new = Path(summary["best_checkpoint"])
    assert new.parent.parent.parent == project / "runs" and new != checkpoint
    assert load_checkpoint(new).meta.recipe["init_weights"] == str(checkpoint)
    after = viewer.layers["micrograph fine-tuned"].data
    # trained on the corrections: more of the painted tertiary band is predicted tertiary than before
    share = lambda data: (data[:96] == 3).mean()  # noqa: E731
    assert share(after) > share(before) + 0.05, (share(before), share(after))
    assert viewer.layers["micrograph fine-tuned"].metadata["csunet"]["checkpoint"] == str(new)


def test_cancel_keeps_the_checkpoint_and_the_pairs(make_viewer, qtbot, checkpoint, tmp_path):
    viewer = make_viewer()
    image = read_array(sorted((sample_root() / "test").iterdir())[0])
    viewer.add_image(image, name="micrograph")
    segmenter, corrector = SegmentWidget(viewer), CorrectWidget(viewer)
    segmenter.checkpoint.value, segmenter.engine.value = checkpoint, "torch"
    segment(qtbot, segmenter, "micrograph")
    corrector.layer.value = "micrograph segmentation"
    corrector.project.value = tmp_path / "project"
    corrector.add_to_training_set()
    saved = {p: p.read_bytes() for p in (tmp_path / "project").rglob("*") if p.is_file()}
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()

    corrector.steps.value = 100_000
    corrector.run.clicked.emit()
    qtbot.waitUntil(lambda: "step 2/" in corrector.work.status.value, timeout=WAIT_MS)
    with qtbot.waitSignal(corrector.work.done, timeout=WAIT_MS):
        corrector.work.cancel_button.clicked.emit()
    assert corrector.work.status.value == "cancelled" and corrector.last_run is None
    assert "micrograph fine-tuned" not in viewer.layers
    assert hashlib.sha256(checkpoint.read_bytes()).hexdigest() == digest
    assert {p: p.read_bytes() for p in saved} == saved
    assert corrector.run.enabled  # ready for another go


def test_measure_widget_equals_csunet_measure(make_viewer, tmp_path, benchmark_root):
    """On a NASA Super-1 ground-truth mask (real particles): the widget's table, CSV files and particles are
    `csunet measure`'s on the same mask saved as a file."""
    viewer = make_viewer()
    description = get_task("super-1", benchmark_root)
    _, raw = pair_split(description, "test").pairs[0]
    mask = description.encoding.decode(read_array(raw))
    mask_file = tmp_path / "masks" / "gt_mask.png"
    write_labels(str(mask_file), mask + LABEL_OFFSET, {"metadata": {"csunet": {"classes": description.classes}}})
    expected = measure([mask_file], tmp_path / "cli", classes=description.classes, pixel_size_um=0.02)

    viewer.open(str(mask_file), plugin="csunet")
    layer = viewer.layers["gt_mask"]
    assert np.array_equal(layer.data, mask + LABEL_OFFSET)
    layer.metadata["csunet"] |= {"classes": description.classes, "checkpoint": "none", "image": "gt"}
    widget = MeasureWidget(viewer)
    widget.layer.reset_choices()
    widget.layer.value = "gt_mask"
    widget.pixel_size.value = 0.02
    shown = widget.measure()
    assert json.dumps(shown, sort_keys=True) == json.dumps(expected["per_class"], sort_keys=True)
    assert widget.table.shape[0] == len(description.classes)
    widget.out.value = tmp_path / "widget"
    saved = widget.save_csv()
    assert saved["per_class"] == expected["per_class"]
    for name in ("images.csv", "particles.csv"):
        assert (tmp_path / "widget" / name).read_text() == (tmp_path / "cli" / name).read_text(), name
    points = viewer.layers["gt_mask particles"]
    counted = sum(entry.get("count", 0) for entry in expected["per_class"].values())
    assert counted > 10 and len(points.data) == counted
    assert set(points.features.columns) >= {"class", "ecd_um", "feret_max_um", "touches_border"}


def test_reader_writer_and_sample(make_viewer, checkpoint, tmp_path):
    viewer = make_viewer()
    image = sorted((sample_root() / "test").iterdir())[0]
    records = predict(checkpoint, [image], tmp_path / "predicted", engine="torch", progress=False)
    mask = read_array(records[0]["mask"])
    assert get_reader(str(sorted((sample_root() / "test_annot").iterdir())[0])) is None  # NASA's colour masks
    viewer.open(str(tmp_path / "predicted"), plugin="csunet")
    assert [layer.name for layer in viewer.layers] == [image.stem, f"{image.stem}_mask"]
    labels = viewer.layers[f"{image.stem}_mask"]
    assert np.array_equal(labels.data, mask + LABEL_OFFSET)
    assert list(labels.features["class"]) == ["unlabelled", "matrix", "secondary", "tertiary"]
    assert np.array_equal(viewer.layers[image.stem].data, read_array(image))

    labels.data[:5] = 0  # erased: unlabelled
    written = write_labels(str(tmp_path / "out.tif"), labels.data, {"metadata": labels.metadata})
    back = read_array(written[0])
    assert (back[:5] == 255).all() and np.array_equal(back[5:], mask[5:])

    viewer.layers.clear()
    viewer.open_sample("csunet", "super1")
    assert [layer.name for layer in viewer.layers] == [image.stem]
    assert np.array_equal(viewer.layers[0].data, read_array(image))


def test_train_from_strokes_then_paint_more_and_train_on(make_viewer, qtbot, tmp_path):
    """From a blank start: strokes painted programmatically on the sample micrograph (3 % of its pixels, simulated
    from its true mask), Train, a segmentation appears and the round is saved as a project that `csunet train`
    reads; more strokes and Train again go on from the first model."""
    from csunet.data import load_description
    from csunet.data.masks import read_mask
    from csunet.data.scribbles import simulate_scribbles
    from csunet.napari_plugin.io import sample_micrograph
    from csunet.napari_plugin.widgets import StrokesWidget

    viewer = make_viewer()
    array, kwargs, _ = sample_micrograph()[0]
    viewer.add_image(array, **kwargs)
    name = kwargs["name"]
    widget = StrokesWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.image.value = name
    widget.classes.value = "matrix, secondary, tertiary"
    layer = widget.add_strokes_layer()
    assert layer.name == f"{name} strokes" and layer.mode == "paint" and not layer.data.any()
    assert list(layer.features["class"]) == ["unlabelled", "matrix", "secondary", "tertiary"]

    description = load_description("sample")
    truth_path = next(p for _, p in pair_split(description, "test").pairs if p.name.startswith(name))
    truth = read_mask(truth_path, description.encoding)
    strokes = simulate_scribbles(truth, 0.03, seed=0)
    layer.data = np.where(strokes == 255, 0, strokes + LABEL_OFFSET).astype(np.uint8)
    widget.project.value = tmp_path / "project"
    widget.minutes.value = 0.1
    widget.scale.value = 0.5  # the model works on the image at half its size; the segmentation comes back whole
    with qtbot.waitSignal(widget.work.done, timeout=WAIT_MS):
        widget.run.clicked.emit()
    first = widget.last_run
    assert first is not None, widget.work.status.value
    assert load_checkpoint(first["best_checkpoint"]).meta.scale == 0.5
    segmentation = viewer.layers[f"{name} segmentation"]
    assert segmentation.data.shape == truth.shape and set(np.unique(segmentation.data)) <= {1, 2, 3}
    assert segmentation.metadata["csunet"]["checkpoint"] == first["best_checkpoint"]
    assert viewer.layers[-1] is layer  # the strokes stay on top, to paint more
    assert "segmented" in widget.work.status.value
    project = tmp_path / "project"
    assert np.array_equal(read_array(project / "masks" / f"{name}_labels.png"), layer.data)
    assert load_description(project).classes == ["matrix", "secondary", "tertiary"]

    more = simulate_scribbles(truth, 0.06, seed=1)
    layer.data = np.where((layer.data == 0) & (more != 255), more + LABEL_OFFSET, layer.data).astype(np.uint8)
    with qtbot.waitSignal(widget.work.done, timeout=WAIT_MS):
        widget.run.clicked.emit()
    second = widget.last_run
    assert second is not first and Path(second["run_dir"]).parent == project / "runs"
    assert load_checkpoint(second["best_checkpoint"]).meta.recipe["init_weights"] == first["best_checkpoint"]
    assert load_checkpoint(second["best_checkpoint"]).meta.scale == 0.5  # the first model's scale goes on
    assert (read_array(project / "masks" / f"{name}_labels.png") != 0).mean() > 0.06


def test_a_micrographs_recorded_pixel_size_becomes_the_layers_scale(make_viewer, qtbot, checkpoint, tmp_path):
    """An SEM TIFF with a Thermo Fisher header opened in napari: segmenting gives the image and its segmentation
    the recorded pixel size as their scale, the status says where it came from, and Measure takes it."""
    grey = read_array(sorted((sample_root() / "test").iterdir())[0])[..., 0]
    path = tmp_path / "sem.tif"
    tifffile.imwrite(path, grey, extratags=[(34682, "s", 0, "[Scan]\nPixelWidth=5e-08\n", True)])
    viewer = make_viewer()
    viewer.open(str(path), plugin="napari")
    widget = SegmentWidget(viewer)
    widget.checkpoint.value, widget.engine.value = checkpoint, "torch"
    segment(qtbot, widget, "sem")
    assert tuple(viewer.layers["sem"].scale) == pytest.approx((0.05, 0.05))
    labels = viewer.layers["sem segmentation"]
    assert tuple(labels.scale) == pytest.approx((0.05, 0.05))
    assert labels.metadata["csunet"]["pixel_size_um"] == pytest.approx(0.05)
    assert "0.05 µm per pixel (from FEI/Thermo metadata ([Scan] PixelWidth))" in widget.work.status.value
    measurer = MeasureWidget(viewer)
    measurer.layer.value = "sem segmentation"
    assert measurer.pixel_size.value == pytest.approx(0.05)


def test_an_ome_zarr_opens_with_its_labels(make_viewer, tmp_path):
    """What `csunet predict --export ome-zarr` writes opens in napari: the image and its segmentation with class names,
    colours and the pixel size as both layers' scale."""
    from csunet.interchange import write_ome_zarr

    image = read_array(sorted((sample_root() / "test").iterdir())[0])[..., 0]
    mask = (np.arange(image.size).reshape(image.shape) % 3).astype(np.uint8)
    path = write_ome_zarr(tmp_path / "m.ome.zarr", image, mask, ["matrix", "secondary", "tertiary"],
                          [[0, 0, 0], [0, 0, 255], [255, 0, 0]], 0.05)  # fmt: skip
    viewer = make_viewer()
    viewer.open(str(path), plugin="csunet")
    assert np.array_equal(viewer.layers["m"].data, image)
    labels = viewer.layers["m segmentation"]
    assert np.array_equal(labels.data, mask + LABEL_OFFSET)
    assert list(labels.features["class"]) == ["unlabelled", "matrix", "secondary", "tertiary"]
    assert tuple(labels.scale) == pytest.approx((0.05, 0.05)) == tuple(viewer.layers["m"].scale)

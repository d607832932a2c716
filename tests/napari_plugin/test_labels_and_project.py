"""The plugin's parts that need no Qt: the label <-> class mapping, the project folder, and the core package
importing without Qt."""

import subprocess
import sys

import numpy as np
import pytest
import yaml

from csunet.data import load_description
from csunet.data.dataset import pair_split
from csunet.data.errors import DataError
from csunet.data.io import read_array
from csunet.data.masks import IGNORE_INDEX
from csunet.napari_plugin.labels import TrainingProject, label_colours, to_class_mask, to_layer_labels

CLASSES = ["matrix", "secondary", "tertiary"]
COLOURS = [(0, 0, 0), (0, 0, 255), (255, 0, 0)]


def test_class_k_is_label_k_plus_1_and_label_0_is_unlabelled():
    mask = np.array([[0, 1, 2], [IGNORE_INDEX, 2, 0]], dtype=np.uint8)
    labels = to_layer_labels(mask)
    assert labels.tolist() == [[1, 2, 3], [0, 3, 1]]
    assert to_class_mask(labels, 3).tolist() == mask.tolist()
    with pytest.raises(DataError, match="holds label 4, but labels 1-3 are the 3 classes"):
        to_class_mask(np.array([[4]]), 3)
    colours = label_colours(COLOURS)
    assert colours[0][3] == 0 and colours[None][3] == 0  # unlabelled shows nothing
    assert colours[3] == (1.0, 0.0, 0.0, 1.0)  # tertiary (class 2) in its colour at label 3


def test_project_pairs_train_as_painted(tmp_path):
    image = (np.arange(40 * 50) % 251).astype(np.uint8).reshape(40, 50)
    labels = np.zeros((40, 50), dtype=np.uint8)
    labels[:10] = 1
    labels[10:20, :25] = 3
    project = TrainingProject(tmp_path / "project")
    path = project.add("first", image, labels, CLASSES, COLOURS, background=0, pixel_size_um=0.05)
    description = load_description(str(path))
    assert description.classes == CLASSES and description.pixel_size_um == 0.05
    assert set(description.splits) == {"train", "val"}
    pairs = pair_split(description, "train").pairs
    assert [p.name for p, _ in pairs] == ["first.tif"]
    assert np.array_equal(read_array(pairs[0][0]), image)  # the image as the layer held it
    decoded = description.encoding.decode(read_array(pairs[0][1]))
    expected = np.full((40, 50), IGNORE_INDEX, dtype=np.uint8)  # written out independently of the mapping
    expected[:10], expected[10:20, :25] = 0, 2
    assert np.array_equal(decoded, expected)

    # adding the same image again replaces its pair; a second image joins it
    labels[30:] = 2
    project.add("first", image, labels, CLASSES, COLOURS)
    project.add("second", image[:, ::-1], labels, CLASSES, COLOURS)
    assert project.pairs() == ["first", "second"]
    assert (read_array(project.masks / "first_labels.png")[30:] == 2).all()
    assert yaml.safe_load(path.read_text())["mask"]["ignore"] == 0
    assert not list(project.folder.rglob("*.tmp"))

    with pytest.raises(DataError, match="labels of 'empty' are empty"):
        project.add("empty", image, np.zeros_like(labels), CLASSES, COLOURS)
    with pytest.raises(DataError, match="this project trains classes"):
        project.add("other", image, labels, ["a", "b", "c", "d"], [*COLOURS, (1, 1, 1)])
    with pytest.raises(DataError, match=r"is \(40, 50\) pixels but its labels are \(40, 49\)"):
        project.add("cut", image, labels[:, :49], CLASSES, COLOURS)


def test_the_core_package_imports_without_qt():
    code = (
        "import sys, csunet.cli, csunet.predict, csunet.train.run, csunet.measure, csunet.napari_plugin.labels, "
        "csunet.napari_plugin.io\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('napari', 'qtpy', 'PyQt6', 'PyQt5', "
        "'PySide6', 'magicgui'))\n"
        "assert not loaded, loaded"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

"""Simulated scribbles: the share asked for, only true classes, strokes in every class and across boundaries, the
same strokes for the same seed; a sparse dataset that trains and reports its labelled share."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from csunet.cli import app
from csunet.data import IGNORE_INDEX, SegmentationDataset, dataset_info, load_description
from csunet.data.errors import DataError
from csunet.data.scribbles import simulate_scribbles


def drawn_mask() -> np.ndarray:
    """200x200: matrix, a 60x60 phase square, and five 6x6 rare particles (0.45 % of the pixels)."""
    mask = np.zeros((200, 200), np.uint8)
    mask[20:80, 20:80] = 1
    for top in range(100, 200, 20):
        mask[top : top + 6, 150:156] = 2
    return mask


@pytest.mark.parametrize("share", [0.01, 0.03, 0.1])
def test_strokes_cover_the_share_asked_with_true_classes_only(share):
    mask = drawn_mask()
    strokes = simulate_scribbles(mask, share, seed=0)
    painted = strokes != IGNORE_INDEX
    assert painted.mean() == pytest.approx(share, rel=0.1)
    assert np.array_equal(strokes[painted], mask[painted])
    counts = np.bincount(strokes[painted], minlength=3)
    assert counts.min() > 0  # every class, the rare one too
    # about as many strokes per class: the rare class gets far more than its 0.45 % of the labelled pixels
    assert counts[2] / counts.sum() > 5 * 0.0045


def test_some_strokes_cross_a_boundary_and_the_seed_decides_the_strokes():
    mask = drawn_mask()
    strokes = simulate_scribbles(mask, 0.05, seed=3)
    left, right = strokes[:, :-1], strokes[:, 1:]
    crossing = (left != IGNORE_INDEX) & (right != IGNORE_INDEX) & (left != right)
    assert crossing.sum() > 0
    assert np.array_equal(strokes, simulate_scribbles(mask, 0.05, seed=3))
    assert not np.array_equal(strokes, simulate_scribbles(mask, 0.05, seed=4))
    with pytest.raises(DataError, match="labelled share"):
        simulate_scribbles(mask, 0.0, seed=0)


def test_a_scribble_dataset_keeps_the_test_masks_complete_and_reports_its_labelled_share(tmp_path):
    result = CliRunner().invoke(
        app, ["data", "scribble", "sample", "--out", str(tmp_path / "s"), "--share", "0.02"]
    )
    assert result.exit_code == 0, result.output
    path = tmp_path / "s" / "dataset.yaml"
    original, sparse = load_description("sample"), load_description(path)
    assert sparse.classes == original.classes and sparse.background == original.background
    for split in ("train", "val", "test"):
        dense, strokes = SegmentationDataset(original, split), SegmentationDataset(sparse, split)
        assert dense.names() == strokes.names()
        for index in range(len(dense)):
            truth, mask = dense.load(index)[1], strokes.load(index)[1]
            painted = mask != IGNORE_INDEX
            assert np.array_equal(mask[painted], truth[painted])
            assert painted.mean() == (1.0 if split == "test" else pytest.approx(0.02, rel=0.15))
    info = dataset_info(sparse)["splits"]
    assert info["test"]["labelled_share"] == 1.0
    assert info["train"]["labelled_share"] == pytest.approx(0.02, rel=0.15)
    assert sum(info["train"]["class_labelled_shares"].values()) == pytest.approx(info["train"]["labelled_share"])
    shown = CliRunner().invoke(app, ["data", "info", str(path)])
    assert "train: sparse labels" in shown.output and "test: sparse" not in shown.output
    as_json = json.loads(CliRunner().invoke(app, ["data", "info", str(path), "--json"]).output)
    assert as_json["splits"]["val"]["labelled_share"] < 0.05
    again = CliRunner().invoke(app, ["data", "scribble", "sample", "--out", str(tmp_path / "s")])
    assert again.exit_code != 0 and "holds a dataset already" in again.output

"""`csunet predict` and `csunet evaluate` with a checkpoint trained on the bundled sample."""

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

from csunet.checkpoint import CheckpointError, load_checkpoint
from csunet.cli import app
from csunet.data import sample_root
from csunet.data.io import read_image
from csunet.predict import predict
from csunet.predictor import Predictor

runner = CliRunner()


def test_predict_writes_masks_overlays_probabilities_and_uncertainty(tiny_run, tmp_path):
    test_images = sample_root() / "test"
    result = runner.invoke(
        app,
        ["predict", tiny_run["best_checkpoint"], str(test_images), "--out", str(tmp_path), "--probabilities",
         "--uncertainty", "--json", "--engine", "torch"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert len(records) == 4
    for record in records:
        image = read_image(record["image"])
        mask = np.asarray(Image.open(record["mask"]))
        assert mask.shape == image.shape[:2] and mask.dtype == np.uint8 and mask.max() <= 2
        assert np.asarray(Image.open(record["overlay"])).shape == image.shape[:2] + (3,)
        probabilities = tifffile.imread(record["probabilities"])
        assert probabilities.shape == (3,) + image.shape[:2] and probabilities.dtype == np.float32
        assert probabilities.min() >= 0 and probabilities.max() <= 1
        entropy = tifffile.imread(record["uncertainty"])
        assert entropy.shape == image.shape[:2] and entropy.min() >= 0 and entropy.max() <= 1
        fractions = np.bincount(mask.ravel(), minlength=3) / mask.size
        assert list(record["class_fractions"].values()) == pytest.approx(fractions.tolist(), abs=1e-6)


def test_predict_any_size_and_tiff_masks(tiny_run, tmp_path):
    loaded = load_checkpoint(tiny_run["best_checkpoint"])
    image = np.random.default_rng(0).random((350, 530, 1), dtype=np.float32)  # grey, not a tile multiple
    prediction = Predictor(loaded, overlap=0.5, batch_size=16).predict_array(image)
    logits = prediction.logits
    assert logits.shape == (3, 350, 530) and np.isfinite(logits.numpy()).all()
    assert prediction.mask.shape == prediction.raw_mask.shape == (350, 530)
    assert prediction.uncertainty.shape == (350, 530) and prediction.probabilities.shape == (3, 350, 530)
    tifffile.imwrite(tmp_path / "big.tif", (image[..., 0] * 65535).astype(np.uint16))
    records = predict(
        tiny_run["best_checkpoint"],
        [tmp_path / "big.tif"],
        tmp_path / "out",
        mask_format="tif",
        progress=False,
        engine="torch",
    )
    assert tifffile.imread(records[0]["mask"]).shape == (350, 530)


def test_a_bad_image_is_reported_and_the_others_still_segmented(tiny_run, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "broken.tif").write_bytes(b"not a tiff")
    Image.open(sample_root() / "test" / "spot2_0d_0.tif").save(inputs / "good.png")
    result = runner.invoke(
        app,
        ["predict", tiny_run["best_checkpoint"], str(inputs), "--out", str(tmp_path / "o"), "--engine", "torch"],
    )
    assert result.exit_code == 1
    assert "broken.tif" in result.output
    assert (tmp_path / "o" / "good_mask.png").is_file()


def test_evaluate_json_and_error_panels(tiny_run, tmp_path):
    figures = tmp_path / "figures"
    result = runner.invoke(
        app,
        [
            "evaluate",
            tiny_run["best_checkpoint"],
            "--task",
            "sample",
            "--split",
            "val",
            "--json",
            "--figures",
            str(figures),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["split"] == "val" and report["images"] == 4 and 0 <= report["nasa_iou"] <= 1
    panels = sorted(figures.glob("*_panel.png"))
    assert len(panels) == 4
    panel = np.asarray(Image.open(panels[0]))
    assert panel.shape[0] > 512 and panel.shape[1] > 5 * 512  # image, truth, prediction, 2 error panels


def test_a_file_that_is_not_a_training_checkpoint_is_named(tmp_path):
    import torch

    path = tmp_path / "weights.pth"
    torch.save({"weight": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="weights.pth: not a csunet training checkpoint"):
        load_checkpoint(path)
    result = runner.invoke(app, ["predict", str(path), str(sample_root() / "test"), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "not a csunet training checkpoint" in " ".join(result.output.split())
    assert not Path(tmp_path / "spot2_0d_0_mask.png").exists()


def test_binary_tasks_have_one_sigmoid_channel_and_nasa_iou_is_the_foreground_iou(tmp_path):
    from csunet.data import load_description, load_pair, pair_split
    from csunet.evaluate import evaluate
    from csunet.train import train
    from tests.conftest import tiny_config

    summary = train(tiny_config(tmp_path, "binary", data="sample-binary", max_epochs=1), progress=False)
    loaded = load_checkpoint(summary["best_checkpoint"])
    assert loaded.meta.out_channels == 1 and loaded.classes == ["matrix", "precipitate"]
    report = evaluate(summary["best_checkpoint"], tta="none", progress=False)
    records = predict(
        summary["best_checkpoint"],
        [sample_root() / "test"],
        tmp_path / "out",
        tta="none",
        probabilities=True,
        progress=False,
        engine="torch",
        cleanup=["off"],  # the masks as the model predicts them: what NASA IoU scores
    )
    description = load_description("sample-binary")
    truths = {
        image.name: load_pair(image, mask, description)[1] for image, mask in pair_split(description, "test").pairs
    }
    for record, row in zip(records, report["per_image"]):
        predicted = np.asarray(Image.open(record["mask"])) == 1
        truth = truths[Path(record["image"]).name] == 1
        union = (predicted | truth).sum()
        assert row["nasa_iou"] == pytest.approx((predicted & truth).sum() / union if union else 1.0, abs=1e-3)
        planes = tifffile.imread(record["probabilities"])
        assert planes.shape[0] == 2 and np.allclose(planes.sum(axis=0), 1, atol=1e-6)


def test_training_decides_the_cleanup_and_evaluation_measures_against_the_truth(tiny_run, tmp_path):
    rules = load_checkpoint(tiny_run["best_checkpoint"]).meta.cleanup
    tried = sum(len(limits) for limits in rules["limits"].values())
    offsets = [line for line in rules["decisions"] if line.startswith("offset ")]
    assert [line.split()[1] for line in offsets] == ["secondary", "tertiary"]  # every class but the matrix
    assert rules["decisions"][0].startswith("as predicted") and len(rules["decisions"]) == 1 + len(offsets) + tried
    summary = json.loads((Path(tiny_run["run_dir"]) / "summary.json").read_text())
    assert summary["cleanup"]["decisions"] == rules["decisions"]
    shown = runner.invoke(
        app, ["evaluate", tiny_run["best_checkpoint"], "--split", "val", "--tta", "none"], terminal_width=120
    )
    assert shown.exit_code == 0, shown.output
    assert "against the truth" in shown.output and "ECD d50 (px)" in shown.output
    result = json.loads(
        runner.invoke(app, ["evaluate", tiny_run["best_checkpoint"], "--json", "--tta", "none"]).output
    )
    # the truth side is what `csunet measure` says of the true test masks, written as index masks
    masks = tmp_path / "truth"
    masks.mkdir()
    from csunet.data import SegmentationDataset, sample_description

    truth = SegmentationDataset(sample_description(), "test")
    for index, name in enumerate(truth.names()):
        Image.fromarray(truth.load(index)[1]).save(masks / f"{Path(name).stem}_mask.png")
    measured = json.loads(
        runner.invoke(
            app,
            [
                "measure",
                str(masks),
                "--out",
                str(tmp_path / "m"),
                "--classes",
                "matrix,secondary,tertiary",
                "--json",
            ],
        ).output  # fmt: skip
    )["per_class"]
    agreement = result["measurement_agreement"]["per_class"]
    assert agreement["secondary"]["count"]["truth"] == measured["secondary"]["count"] == 110
    assert agreement["tertiary"]["ecd_d50"]["truth"] == pytest.approx(measured["tertiary"]["ecd_px_d50"])
    assert agreement["matrix"]["area_fraction"]["truth"] == pytest.approx(measured["matrix"]["area_fraction_mean"])
    off = json.loads(
        runner.invoke(
            app, ["evaluate", tiny_run["best_checkpoint"], "--json", "--cleanup", "off", "--tta", "none"]
        ).output
    )
    assert off["cleanup"] == "none" and "mask_miou_without_cleanup" not in off


def test_predict_applies_a_changed_cleanup(tiny_run, tmp_path):
    image = sample_root() / "test" / "spot2_0d_0.tif"
    records = predict(tiny_run["best_checkpoint"], [image], tmp_path / "raw", progress=False, engine="torch",
                      cleanup=["off"])  # fmt: skip
    raw = np.asarray(Image.open(records[0]["mask"]))
    records = predict(tiny_run["best_checkpoint"], [image], tmp_path / "cleaned", progress=False, engine="torch",
                      cleanup=["small_regions.secondary=100000", "small_regions.tertiary=100000"])  # fmt: skip
    cleaned = np.asarray(Image.open(records[0]["mask"]))
    from scipy import ndimage

    def areas(mask: np.ndarray, index: int) -> np.ndarray:
        labels, _ = ndimage.label(mask == index, np.ones((3, 3)))
        return np.bincount(labels.ravel())[1:]

    # nearly every small region is gone (the checkpoint's own rules, applied after, may leave a few new ones)
    for index in (1, 2):
        assert (areas(cleaned, index) < 100000).sum() < (areas(raw, index) < 100000).sum() / 2
    assert not np.array_equal(raw, cleaned)
    manifest = json.loads((tmp_path / "cleaned" / "predictions.json").read_text())
    # the overrides join what the checkpoint kept
    assert {"small_regions secondary < 100000 px", "small_regions tertiary < 100000 px"} <= set(
        manifest["cleanup"].split("; ")
    )


def test_predict_moves_a_class_outline_by_its_offset(tiny_run, tmp_path):
    image = sample_root() / "test" / "spot2_0d_0.tif"
    tertiary = {}
    for offset in ("-5", "5"):
        records = predict(tiny_run["best_checkpoint"], [image], tmp_path / offset, progress=False, engine="torch",
                          cleanup=[f"offset.tertiary={offset}"])  # fmt: skip
        tertiary[offset] = (np.asarray(Image.open(records[0]["mask"])) == 2).sum()
        manifest = json.loads((tmp_path / offset / "predictions.json").read_text())
        assert f"offset tertiary {float(offset):+g}" in manifest["cleanup"]
    assert tertiary["-5"] < tertiary["5"]  # a lower tertiary logit: fewer pixels won by tertiary

"""A new user's first hour with their own data (issue 16): describing a single folder of index masks, naming
classes in one place, messages that read well in a log, and one line (exit code 2) for every user error."""

import json
import re

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from csunet.cli import app
from csunet.data import load_description, sample_root
from csunet.data.holdout import hold_out
from csunet.metrics import iou_summary
from csunet.render import overlay
from tests.conftest import TINY_CLI

runner = CliRunner()
MODEL_FLAGS = TINY_CLI[2:]  # the tiny model without --task sample


def steel_folder(root, count: int = 8):
    """A single folder pair of index masks in which value 0 is a matrix phase: ferrite (0) around pearlite
    colonies (1) with a few inclusions (2), drawn on images whose intensity follows the phases."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for index in range(count):
        mask = np.zeros((96, 96), np.uint8)
        for _ in range(4):
            top, left = rng.integers(0, 70, size=2)
            mask[top : top + 20, left : left + 26] = 1
        for _ in range(6):
            top, left = rng.integers(0, 92, size=2)
            mask[top : top + 4, left : left + 4] = 2
        image = np.choose(mask, [200, 90, 20]).astype(np.float32) + rng.normal(0, 12, mask.shape)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / "images" / f"s{index:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"s{index:02d}.png")
    return root


def test_walkthrough_init_info_rename_train_to_a_test_score(tmp_path):
    root = steel_folder(tmp_path / "steel")
    result = runner.invoke(app, ["data", "init", str(root)])
    assert result.exit_code == 0, result.output
    description = root / "dataset.yaml"
    text = description.read_text()
    assert "images: images\nmasks: masks\n" in text and "background: matrix" in text
    # one place to name a class: the table of names and mask values
    description.write_text(
        text.replace("matrix", "ferrite").replace("class_1", "pearlite").replace("class_2", "inclusion")
    )
    result = runner.invoke(app, ["data", "info", str(root), "--json"])  # the folder holding dataset.yaml
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["classes"] == ["ferrite", "pearlite", "inclusion"] and info["splits"]["all"]["pairs"] == 8
    assert info["splits"]["all"]["mask_dtypes"] == {"uint8 1ch": 8}
    out = tmp_path / "runs"
    result = runner.invoke(app, ["train", "--data", str(root), *MODEL_FLAGS, "--max-epochs", "2", "--out", str(out),
                                 "--name", "steel"])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "steel" / "summary.json").read_text())
    assert set(summary["test"]["per_class_iou"]) == {"ferrite", "pearlite", "inclusion"}
    held = json.loads((out / "steel" / "holdout.json").read_text())
    assert [len(held[s]) for s in ("train", "val", "test")] == [4, 2, 2]  # 0.2 of 8 rounds to 2 each
    assert not set(held["test"]) & set(held["train"] + held["val"])
    test = json.loads((out / "steel" / "test_metrics.json").read_text())
    assert sorted(row["image"] for row in test["per_image"]) == held["test"]


def test_held_out_splits_are_the_same_every_time(tmp_path):
    root = steel_folder(tmp_path / "steel", count=10)
    runner.invoke(app, ["data", "init", str(root)])
    description = load_description(root)
    first, again = hold_out(description, 0.2, 0.1, 3), hold_out(description, 0.2, 0.1, 3)
    assert first.splits == again.splits and len(first.splits["test"].names) == 1
    assert hold_out(description, 0.2, 0.0, 3).splits.keys() == {"train", "val"}
    with pytest.raises(Exception, match="too few to hold out"):
        hold_out(description, 0.5, 0.5, 3)


def test_background_is_an_explicit_field(tmp_path):
    data = {
        "classes": {"pore": 0, "ferrite": 1, "pearlite": 2},
        "background": "ferrite",
        "images": "i",
        "masks": "m",
    }
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    described = load_description(tmp_path / "d.yaml")
    assert described.background == 1
    confusion = torch.tensor([[5, 1, 0], [0, 8, 2], [0, 0, 4]])
    # IoU pore 5/6, ferrite 8/11, pearlite 4/6: the mean without the background (ferrite) is (5/6 + 4/6) / 2
    assert iou_summary(1.0, confusion, described.classes, described.background)["miou_without_background"] == (
        pytest.approx((5 / 6 + 4 / 6) / 2)
    )
    assert iou_summary(1.0, confusion, described.classes, None)["miou_without_background"] == pytest.approx(
        (5 / 6 + 8 / 11 + 4 / 6) / 3
    )
    image = np.full((1, 3, 3), 100, np.uint8)
    painted = overlay(image, np.array([[0, 1, 2]]), [(255, 0, 0), (0, 255, 0), (0, 0, 255)], background=1)
    assert painted[0, 1].tolist() == [100, 100, 100] and painted[0, 0].tolist() != [100, 100, 100]
    data["background"] = "austenite"
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(Exception, match="background 'austenite' is not one of the classes"):
        load_description(tmp_path / "d.yaml")


def test_a_class_in_no_image_is_named(tmp_path):
    root = steel_folder(tmp_path / "steel", count=3)
    runner.invoke(app, ["data", "init", str(root)])
    text = (root / "dataset.yaml").read_text().replace("  class_2: 2\n", "  class_2: 2\n  carbide: 7\n")
    (root / "dataset.yaml").write_text(text)
    result = runner.invoke(app, ["data", "info", str(root)])
    assert "no image holds class carbide" in " ".join(result.output.split())


def test_a_folder_without_a_description_says_how_to_write_one(tmp_path):
    result = runner.invoke(app, ["data", "info", str(tmp_path)])
    assert result.exit_code == 2 and f"write one with `csunet data init {tmp_path}`" in result.output


def test_output_read_in_a_log_keeps_tables_and_paths_whole(tmp_path):
    # CliRunner's stdout is not a terminal, as in a log file or `| tee`
    deep = tmp_path / ("a_rather_long_folder_name_for_a_lab_share" * 2) / "steel"
    steel_folder(deep, count=3)
    result = runner.invoke(app, ["data", "init", str(deep)])
    assert f"`csunet data info {deep / 'dataset.yaml'}`" in result.output  # one line, never wrapped
    result = runner.invoke(app, ["data", "info", str(deep)])
    assert "…" not in result.output
    assert re.search(r"│ all\s+│\s+3 │", result.output)


def zero_byte(tmp_path):
    path = tmp_path / "empty.ckpt"
    path.write_bytes(b"")
    return [str(path), str(sample_root() / "test")]


USER_ERRORS = [
    # (what, arguments, words in the one-line message); each must exit 2 with no traceback
    ("zero-byte checkpoint", lambda tmp: ["predict", *zero_byte(tmp), "--out", str(tmp / "o")], "an empty file (0 bytes)"),
    ("unknown model", lambda tmp: ["train", "--task", "sample", "--model", "unet3000"], "unknown model 'unet3000'"),
    ("misspelt model setting in the CLI", lambda tmp: ["train", "--task", "sample", "--model", "unet", "--depths",
     "original"], "model 'unet' has no setting 'depths'"),
    ("batch size 0", lambda tmp: ["train", "--task", "sample", "--batch-size", "0"], "batch_size must be in [1, inf], not 0"),
    ("max minutes 0", lambda tmp: ["train", "--task", "sample", "--max-minutes", "0"], "max_minutes must be in (0, inf]"),
    ("file-shaped train --out", lambda tmp: ["train", "--task", "sample", *MODEL_FLAGS[2:], "--out",
     str(tmp / "file.txt")], "cannot write the run folder there"),
    ("missing grid", lambda tmp: ["benchmark", "--grid", str(tmp / "none.yaml")], "no such grid file"),
    ("missing database", lambda tmp: ["tables", str(tmp / "none.sqlite")], "no such results database"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "arguments", "words"), USER_ERRORS, ids=[row[0] for row in USER_ERRORS])
def test_user_errors_are_one_line_and_exit_2(tmp_path, what, arguments, words):
    (tmp_path / "file.txt").write_text("a file")
    result = runner.invoke(app, arguments(tmp_path))
    assert result.exit_code == 2, (result.output, result.exception)
    assert words in " ".join(result.output.split()) and "Traceback" not in result.output


def test_a_bug_keeps_its_traceback_and_asks_for_doctor(monkeypatch):
    import csunet.data

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(csunet.data, "list_tasks", broken)
    result = runner.invoke(app, ["data", "tasks"])
    assert result.exit_code == 1 and isinstance(result.exception, ZeroDivisionError)
    assert "csunet doctor" in result.output


def test_a_code_running_pickle_is_refused_without_torch_advice(tmp_path):

    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": Evil()}, path)
    result = runner.invoke(app, ["evaluate", str(path)])
    assert result.exit_code == 2
    assert "weights_only=False" not in result.output and "evil.ckpt: refused" in " ".join(result.output.split())


def test_predict_and_evaluate_refuse_bad_numbers_and_places_in_one_line(tiny_run, tmp_path):
    (tmp_path / "file.txt").write_text("a file")
    checkpoint = tiny_run["best_checkpoint"]
    result = runner.invoke(app, ["predict", checkpoint, str(sample_root() / "test"), "--engine", "torch", "--batch-size", "-1",
                                 "--out", str(tmp_path / "p")])  # fmt: skip
    assert result.exit_code == 2 and "batch_size must be in [1, inf], not -1" in result.output
    result = runner.invoke(app, ["evaluate", checkpoint, "--figures", str(tmp_path / "file.txt")])
    assert result.exit_code == 2 and "cannot write the error panels there (it is a file)" in result.output


def test_a_run_that_died_before_its_first_checkpoint_leaves_its_name_free(tmp_path):
    from csunet.errors import RunExistsError
    from csunet.runs import CONFIG_FILE, refuse_existing_run

    run = tmp_path / "r"
    run.mkdir()
    (run / CONFIG_FILE).write_text("model: cs_unet\n")
    refuse_existing_run(run)  # nothing worth keeping: no error
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    with pytest.raises(RunExistsError, match="already holds a run; continue it with --resume"):
        refuse_existing_run(run)

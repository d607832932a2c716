"""Bad inputs, settings and interruptions that once gave a wrong answer with exit code 0 (issue 15). Each case
either works or is refused with a message naming the thing and the problem.

To add a case: a row in ``REFUSED`` when a call must raise, or a test function when it takes more set-up.
"""

import json
import logging
import shutil
import sqlite3
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile
import torch
import yaml
from typer.testing import CliRunner

from csunet.cli import app
from csunet.data import DataError, DataWarning, read_image, sample_root
from csunet.data.description import DatasetDescription
from csunet.errors import ResultsStoreError, SettingsError
from csunet.inference import gaussian_window, sliding_window_logits, tile_starts
from csunet.measure import measure
from csunet.metrics import nasa_iou
from csunet.predict import predict
from csunet.train import TrainConfig
from csunet.train.schedule import TwoStageSchedule
from tests.conftest import TINY_MODEL

runner = CliRunner()
SAMPLE_TEST = sample_root() / "test"


def description(**changes) -> dict:
    base = {"classes": ["matrix", "oxide"], "mask": {"encoding": "index", "values": {"matrix": 0, "oxide": 1}},
            "images": "images", "masks": "masks"}  # fmt: skip
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".")
            base[outer] = {**base[outer], inner: value}
        else:
            base[key] = value
    return base


REFUSED = [
    # (what, call, error, message)
    ("overlap -1 leaves gaps", lambda: tile_starts(100, 32, -1), SettingsError, r"overlap must be in \[0, 0.9\]"),
    ("overlap 0.99 explodes", lambda: tile_starts(100, 32, 0.99), SettingsError, r"overlap must be in \[0, 0.9\]"),
    ("misspelt model setting", lambda: TrainConfig(model_settings={"window_sise": 8}), SettingsError,
     r"no setting 'window_sise'; its settings are encoder, img_size, window_size"),
    ("setting of another model", lambda: TrainConfig(model="unet", model_settings={"depths": "original"}),
     SettingsError, "model 'unet' has no setting 'depths'"),
    ("max_minutes 0", lambda: TrainConfig(max_minutes=0), SettingsError, r"max_minutes must be in \(0, inf\]"),
    ("max_minutes -1", lambda: TrainConfig(max_minutes=-1), SettingsError, "max_minutes must be in"),
    ("max_epochs 0", lambda: TrainConfig(max_epochs=0), SettingsError, r"max_epochs must be in \[1, inf\], not 0"),
    ("batch_size 0", lambda: TrainConfig(batch_size=0), SettingsError, r"batch_size must be in \[1, inf\], not 0"),
    ("unknown key in config", lambda: TrainConfig.from_dict({"window_sise": 8}), SettingsError,
     "unknown training settings window_sise; the settings are data, data_root"),
    ("splits_", lambda: DatasetDescription.from_dict({**description(), "splits_": {}}), DataError,
     "unknown key splits_; the keys are name, classes"),
    ("mask.ignroe", lambda: DatasetDescription.from_dict(description(**{"mask.ignroe": 255})), DataError,
     "unknown key mask.ignroe; the keys of mask are encoding"),
    ("mask.sufix", lambda: DatasetDescription.from_dict(description(**{"mask.sufix": "_m"})), DataError,
     "unknown key mask.sufix"),
    ("ignore erases a class", lambda: DatasetDescription.from_dict(description(**{"mask.ignore": 1})), DataError,
     "ignore value 1 is also the value of class 'oxide'"),
    ("classes as a string", lambda: DatasetDescription.from_dict(description(classes="mab")), DataError,
     "classes must be a list of names"),
    ("mask as a string", lambda: DatasetDescription.from_dict(description(mask="index")), DataError,
     "mask must be a mapping"),
    ("decimal comma", lambda: DatasetDescription.from_dict(description(pixel_size_um="0,0125")), DataError,
     "pixel_size_um must be a positive number of micrometres per pixel .* not '0,0125'"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "call", "error", "message"), REFUSED, ids=[row[0] for row in REFUSED])
def test_refused_with_a_clear_message(what, call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("size", [33, 65, 97, 130, 333])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.9])
def test_every_pixel_of_odd_sizes_is_covered_with_weight(size, overlap):
    tile = 32
    starts = tile_starts(size, tile, overlap)
    covered = np.zeros(size, dtype=int)
    for start in starts:
        covered[start : min(start + tile, size)] += 1
    assert covered.min() >= 1 and starts[0] == 0 and min(starts[-1] + tile, size) == size
    assert all(b - a <= tile * (1 - overlap) + 1 for a, b in zip(starts, starts[1:]))  # at least the overlap
    # the blend weights of a whole 2-D image: positive everywhere, so no 0/0
    weights = torch.zeros(size, size)
    window = gaussian_window(tile)[: min(tile, size), : min(tile, size)]
    for top in starts:
        for left in starts:
            block = weights[top : top + tile, left : left + tile]
            block += window[: block.shape[0], : block.shape[1]]
    assert weights.min() > 0


def test_sliding_window_refuses_a_bad_overlap_before_running():
    model = torch.nn.Conv2d(3, 2, 1)
    with pytest.raises(SettingsError, match="overlap"):
        sliding_window_logits(model, torch.rand(3, 70, 70), 32, -1)


def test_evaluate_with_a_negative_overlap_exits_2(tiny_run):
    result = runner.invoke(app, ["evaluate", tiny_run["best_checkpoint"], "--overlap", "-1"])
    assert result.exit_code == 2 and "overlap must be in [0, 0.9], not -1.0" in result.output


def test_images_of_one_name_in_two_folders_are_refused_naming_both(tiny_run, tmp_path):
    for folder in ("A", "B"):
        (tmp_path / folder).mkdir()
        shutil.copy(SAMPLE_TEST / "spot2_0d_0.tif", tmp_path / folder / "a00.tif")
    with pytest.raises(DataError, match=r"A/a00.tif and .*B/a00.tif would both be written as a00_mask"):
        predict(
            tiny_run["best_checkpoint"],
            [tmp_path / "A", tmp_path / "B"],
            tmp_path / "out",
            progress=False,
            engine="torch",
        )
    assert not (tmp_path / "out").exists()


def test_a_folder_with_earlier_outputs_is_refused_and_measure_reads_only_what_the_run_listed(tiny_run, tmp_path):
    out = tmp_path / "out"
    first = predict(
        tiny_run["best_checkpoint"], [SAMPLE_TEST / "spot2_0d_0.tif"], out, progress=False, engine="torch"
    )
    with pytest.raises(DataError, match="already holds the outputs of an earlier prediction run .*--overwrite"):
        predict(tiny_run["best_checkpoint"], [SAMPLE_TEST / "spot2_0d_4.tif"], out, progress=False, engine="torch")
    second = predict(tiny_run["best_checkpoint"], [SAMPLE_TEST / "spot2_0d_4.tif"], out, progress=False,
                     overwrite=True, engine="torch")  # fmt: skip
    assert not Path(first[0]["mask"]).is_file()  # --overwrite deleted what the earlier run listed
    summary = measure([out], tmp_path / "measurements")
    assert summary["masks"] == 1
    images = (tmp_path / "measurements" / "images.csv").read_text()
    assert "spot2_0d_4" in images and "spot2_0d_0" not in images
    assert json.loads((out / "predictions.json").read_text())["complete"] is True
    assert [r["mask"] for r in second] == [str(out / "spot2_0d_4_mask.png")]


def test_measure_refuses_an_interrupted_prediction_run(tiny_run, tmp_path):
    out = tmp_path / "out"
    predict(tiny_run["best_checkpoint"], [SAMPLE_TEST / "spot2_0d_0.tif"], out, progress=False, engine="torch")
    manifest = json.loads((out / "predictions.json").read_text())
    (out / "predictions.json").write_text(json.dumps({**manifest, "complete": False, "inputs": 4}))
    with pytest.raises(DataError, match="stopped after 1 of 4 images"):
        measure([out], tmp_path / "measurements")


def test_an_unwritable_out_fails_before_any_segmentation(tiny_run, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    result = runner.invoke(
        app, ["predict", tiny_run["best_checkpoint"], str(SAMPLE_TEST), "--out", str(blocker), "--engine", "torch"]
    )
    assert result.exit_code != 0 and not list(tmp_path.glob("*_mask.png"))


def test_nan_pixels_are_refused(tmp_path):
    image = np.full((16, 16), 0.5, dtype=np.float32)
    image[3, 4] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", image)
    with pytest.raises(DataError, match=r"nan.tif: 1 pixels are NaN or infinite"):
        read_image(tmp_path / "nan.tif")


def test_negative_signed_pixels_are_refused(tmp_path):
    tifffile.imwrite(tmp_path / "signed.tif", np.array([[-5, 100], [7, 8]], dtype=np.int16))
    with pytest.raises(DataError, match=r"signed.tif: signed int16 image with negative values \(down to -5\)"):
        read_image(tmp_path / "signed.tif")


@pytest.mark.parametrize("pages", [3, 4])
def test_tiff_stacks_are_not_read_as_colour(tmp_path, pages):
    stack = np.stack([np.full((20, 30), 40 * (i + 1), dtype=np.uint8) for i in range(pages)])
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    with pytest.warns(DataWarning, match=f"stack of {pages} pages; reading the first page only"):
        image = read_image(tmp_path / "stack.tif")
    assert image.shape == (20, 30, 1) and image[0, 0, 0] == pytest.approx(40 / 255)


def test_a_planar_rgb_tiff_is_still_colour(tmp_path):
    planes = np.stack([np.full((20, 30), v, dtype=np.uint8) for v in (10, 20, 30)])
    tifffile.imwrite(tmp_path / "rgb.tif", planes, photometric="rgb", planarconfig="separate")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        image = read_image(tmp_path / "rgb.tif")
    assert image.shape == (20, 30, 3)


def test_nasa_iou_of_softmax_models_uses_the_arg_max():
    # one image, 2x2 pixels, 3 classes; truth [[0, 1], [2, 1]]
    target = torch.tensor([[[0, 1], [2, 1]]])
    logits = torch.tensor([[[[2.0, 0.1], [0.0, 0.0]],    # class 0
                            [[1.0, 0.5], [0.0, 3.0]],    # class 1
                            [[-1.0, 0.2], [1.0, -5.0]]]])  # class 2  # fmt: skip
    # arg-max: [[0, 1], [2, 1]]: every pixel right -> 1.0
    assert nasa_iou(logits, target, activation="softmax").item() == pytest.approx(1.0)
    # a sigmoid of each channel (> 0 logit): pixel (0,0) says classes 0 and 1, (0,1) all three, (1,0) class 2,
    # (1,1) class 1: intersection 4, union = 4 true + 3 false positives (class 1 at (0,0), 0 and 2 at (0,1)) = 7
    assert nasa_iou(logits, target, activation="sigmoid").item() == pytest.approx(4 / 7)


def test_a_run_without_a_test_score_is_failed_not_finished(tmp_path):
    from csunet.experiments.runner import run_grid
    from csunet.experiments.store import connect, rows

    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"name": "g", "tasks": ["sample"], "models": {"swin_unet": {}},
                                    "recipe": {"tile_size": 64}}))  # fmt: skip
    counts = run_grid(grid, tmp_path / "r.sqlite", execute=lambda run, out: {"test": {}, "test_error": "bad mask"},
                      say=lambda _: None)  # fmt: skip
    assert counts == {"finished": 0, "failed": 1, "skipped": 0}
    (failed,) = rows(connect(tmp_path / "r.sqlite"), status="failed")
    assert "the final test gave no score: bad mask" in failed["error"]


def test_a_grid_recipe_with_a_misspelt_key_is_refused_by_name(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"tasks": ["sample"], "models": {"unet": {}}, "recipe": {"max_epoch": 3}}))
    result = runner.invoke(app, ["benchmark", "--grid", str(grid), "--db", str(tmp_path / "r.sqlite")])
    assert result.exit_code == 2 and "grid.yaml: recipe: unknown training settings max_epoch" in result.output


def _database(path: Path, grid: str, runs: dict) -> Path:
    from csunet.experiments.store import connect, save

    connection = connect(path)
    for run_id, (status, iou) in runs.items():
        save(connection, {"id": run_id, "grid": grid, "config": {}, "status": status, "nasa_iou": iou})
    return path


def test_merge_counts_each_run_once_reports_conflicts_and_refuses_other_grids(tmp_path):
    from csunet.experiments.store import merge

    one = _database(tmp_path / "1.sqlite", "g", {"a": ("finished", 0.5), "b": ("failed", None)})
    two = _database(
        tmp_path / "2.sqlite", "g", {"a": ("finished", 0.6), "b": ("finished", 0.7), "c": ("running", None)}
    )
    counts = merge([one, two], tmp_path / "all.sqlite")
    assert counts["runs"] == 3 and counts["added"] == 3 and counts["replaced"] == 1
    assert counts["conflicts"] == [f"run a: NASA IoU 0.5 kept, 0.6 in {two} not"]
    other = _database(tmp_path / "3.sqlite", "h", {"z": ("finished", 0.9)})
    with pytest.raises(ResultsStoreError, match=r"different grids: g \(.*\), h \(.*3.sqlite\)"):
        merge([other], tmp_path / "all.sqlite")


def test_a_file_that_is_no_results_database_is_named(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not sqlite at all " * 100)
    result = runner.invoke(app, ["tables", str(junk)])
    assert result.exit_code == 2 and "junk.sqlite: not a readable results database" in result.output
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE runs (id TEXT)")
    result = runner.invoke(app, ["tables", str(other)])
    assert result.exit_code == 2 and "not a csunet results database" in result.output


def test_stage_two_without_a_best_checkpoint_says_so(caplog):
    schedule = TwoStageSchedule(patience=1, fine_tune_lr=1e-5)
    module = torch.nn.Linear(2, 2)
    optimiser = torch.optim.Adam(module.parameters(), lr=1e-3)
    trainer = SimpleNamespace(checkpoint_callbacks=[], optimizers=[optimiser], current_epoch=3)
    with caplog.at_level(logging.INFO):
        schedule._start_fine_tuning(trainer, module)
    assert "no best checkpoint was written to reload" in caplog.text and "reloaded" not in caplog.text
    assert schedule.reloaded_best is False and optimiser.param_groups[0]["lr"] == 1e-5


def test_tiny_model_settings_are_all_known():
    TrainConfig(**TINY_MODEL)  # the suite's own tiny model passes the strict check

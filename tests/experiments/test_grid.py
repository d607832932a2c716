"""Experiment grids: expansion and ids, sharding, reruns, failures, merging, the paper's tables."""

import sqlite3
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from csunet.cli import app
from csunet.experiments.grid import expand_grid, load_grid
from csunet.experiments.runner import run_grid
from csunet.experiments.store import connect, merge, rows, save
from csunet.experiments.tables import table4, table8, table_by_weights, to_csv, to_latex, to_markdown
from csunet.sharding import parse_shard, shard_of
from tests.conftest import TINY_MODEL

GRIDS = Path(__file__).resolve().parents[2] / "grids"


def write_grid(path: Path, **grid) -> Path:
    path.write_text(yaml.safe_dump(grid))
    return path


def ten_run_grid(tmp_path: Path) -> Path:
    return write_grid(
        tmp_path / "ten.yaml", name="ten", tasks=["super-1", "ebc-1"],
        models={"unet": {"encoders": ["resnet18", "resnet34", "resnet50", "vgg16_bn", "efficientnet-b0"]}},
    )  # fmt: skip


def test_shards_are_disjoint_and_complete(tmp_path):
    runs = expand_grid(load_grid(ten_run_grid(tmp_path)))
    assert len(runs) == 10 and len({r.id for r in runs}) == 10
    parts = [shard_of(runs, k, 3) for k in (1, 2, 3)]
    ids = [r.id for part in parts for r in part]
    assert sorted(ids) == sorted(r.id for r in runs) and len(ids) == len(set(ids))
    assert parse_shard("2/3") == (2, 3)
    with pytest.raises(ValueError, match="K/N"):
        parse_shard("two")


def test_run_ids_do_not_depend_on_where_the_data_lives(tmp_path):
    grid = load_grid(ten_run_grid(tmp_path))
    here, there = expand_grid(grid, "/data/nasa"), expand_grid(grid, "/mnt/other/nasa")
    assert [r.id for r in here] == [r.id for r in there]
    assert here[0].config.data_root == "/data/nasa"


def test_shipped_grids_expand():
    assert len(expand_grid(load_grid(GRIDS / "cpu-quick.yaml"))) == 6
    paper = expand_grid(load_grid(GRIDS / "paper.yaml"))
    assert len({r.config.model_settings.get("encoder") for r in paper if r.config.model == "cs_unet"}) == 19
    swin = {r.config.swin_weights for r in paper if r.config.model == "cs_unet" and r.weights_name == "micronet"}
    assert swin == {"weights/microlite-original.safetensors", "weights/microlite-intermediate.safetensors"}
    assert all(r.config.swin_weights is None for r in paper if r.config.model == "unet")
    assert all(r.config.cnn_weights is None for r in paper if r.config.model == "transdeeplab")


def test_two_tiny_runs_then_a_rerun_skips_both(tmp_path):
    grid = write_grid(
        tmp_path / "tiny.yaml", name="tiny", tasks=["sample", "sample-binary"],
        models={TINY_MODEL["model"]: {}},
        recipe={"model_settings": TINY_MODEL["model_settings"], "tile_size": 64, "crops_per_epoch": 8,
                "max_epochs": 1, "val_overlap": 0.0, "tta": "none", "decide_cleanup": False},
    )  # fmt: skip
    db = tmp_path / "results.sqlite"
    assert run_grid(grid, db, out=tmp_path / "runs", say=lambda _: None) == {
        "finished": 2,
        "failed": 0,
        "skipped": 0,
    }
    finished = rows(connect(db))
    assert {r["task"] for r in finished} == {"sample", "sample-binary"}
    assert all(0 <= r["nasa_iou"] <= 1 and Path(r["checkpoint"]).is_file() for r in finished)
    assert run_grid(grid, db, out=tmp_path / "runs", say=lambda _: None) == {
        "finished": 0,
        "failed": 0,
        "skipped": 2,
    }


def test_a_run_that_raises_is_recorded_and_the_grid_goes_on(tmp_path):
    calls = []

    def execute(run, out):
        calls.append(run.id)
        if run.config.model_settings["encoder"] == "resnet34":
            raise RuntimeError("out of memory (simulated)")
        return {"test": {"nasa_iou": 0.5, "miou_without_background": 0.4, "per_class_iou": {}}, "epochs": 1}

    db = tmp_path / "r.sqlite"
    counts = run_grid(ten_run_grid(tmp_path), db, shard_spec=(1, 2), execute=execute, say=lambda _: None)
    assert counts == {"finished": 4, "failed": 1, "skipped": 0} and len(calls) == 5
    failed = rows(connect(db), status="failed")
    assert len(failed) == 1 and "out of memory (simulated)" in failed[0]["error"]
    # the failed run is tried again on a rerun; finished ones are not
    calls.clear()
    run_grid(ten_run_grid(tmp_path), db, shard_spec=(1, 2), execute=execute, say=lambda _: None)
    assert len(calls) == 1


def synthetic_db(path: Path) -> Path:
    connection = connect(path)
    data = [  # (id, task, model, weights, iou)
        ("a", "super-1", "unet", "imagenet", 0.90), ("b", "super-1", "unet_plusplus", "imagenet", 0.94),
        ("c", "super-1", "unet", "micronet", 0.92), ("d", "super-1", "cs_unet", "imagenet", 0.95),
        ("e", "super-1", "cs_unet", "micronet", 0.97), ("f", "super-1", "hiformer", "imagenet", 0.80),
        ("g", "ebc-1", "cs_unet", "imagenet", 0.60), ("h", "ebc-1", "cs_unet", "imagenet", 0.70),
    ]  # fmt: skip
    for run_id, task, model, weights, iou in data:
        save(connection, {"id": run_id, "task": task, "model": model, "weights": weights, "config": {},
                          "status": "finished", "nasa_iou": iou})  # fmt: skip
    save(connection, {"id": "x", "task": "ebc-1", "model": "unet", "weights": "imagenet", "config": {},
                      "status": "failed", "error": "boom"})  # fmt: skip
    return path


def test_tables_match_hand_computed_values(tmp_path):
    finished = rows(connect(synthetic_db(tmp_path / "s.sqlite")))
    t4 = dict(table4(finished).rows)
    assert t4["super-1"][0] == (pytest.approx(94.0), 3)  # UNet/UNet++: best of 90, 94, 92
    assert t4["super-1"][1] == (pytest.approx(80.0), 1)  # transformer models
    assert t4["super-1"][2] == (pytest.approx(97.0), 2)  # CS-UNet
    assert t4["super-1"][3] == (96.22, 0) and t4["ebc-1"][4] == (97.66, 0)  # the authors' numbers
    assert t4["ebc-1"][0] == (None, 0)  # the failed UNet run counts nowhere
    t5 = table_by_weights(finished, "UNet/UNet++", 5)
    assert t5.columns == ["imagenet", "micronet"]
    assert dict(t5.rows)["super-1"] == [(pytest.approx(92.0), 2), (pytest.approx(92.0), 1)]
    t7 = dict(table_by_weights(finished, "CS-UNet", 7).rows)
    assert t7["ebc-1"] == [(pytest.approx(65.0), 2), (None, 0)]
    t8 = table8(finished)
    assert dict(t8.rows)["super-1"][t8.columns.index("cs_unet")] == (pytest.approx(96.0), 2)
    assert "| super-1 | 94.00 (3) | 80.00 (1) | 97.00 (2) | 96.22 | 96.43 |" in to_markdown(table4(finished))
    assert "super-1,94.0,3,80.0,1,97.0,2" in to_csv(table4(finished))
    assert r"\begin{tabular}" in to_latex(t8) and r"unet\_plusplus" in to_latex(t8)


def test_merge_and_tables_commands(tmp_path):
    first = synthetic_db(tmp_path / "one.sqlite")
    second = connect(tmp_path / "two.sqlite")
    save(second, {"id": "x", "task": "ebc-1", "model": "unet", "weights": "imagenet", "config": {},
                  "status": "finished", "nasa_iou": 0.5})  # fmt: skip
    counts = merge([first, tmp_path / "two.sqlite"], tmp_path / "all.sqlite")
    assert (counts["runs"], counts["added"], counts["replaced"], counts["conflicts"]) == (9, 9, 1, [])
    merged = sqlite3.connect(tmp_path / "all.sqlite").execute("SELECT status FROM runs WHERE id = 'x'").fetchone()
    assert merged == ("finished",)
    result = CliRunner().invoke(app, ["tables", str(tmp_path / "all.sqlite"), "--out", str(tmp_path / "tables")])
    assert result.exit_code == 0, result.output
    assert "Table 4" in result.output and (tmp_path / "tables" / "tables.tex").is_file()


def test_run_ids_of_the_shipped_results_database_are_still_valid():
    # settings added since (recipe, optimizer, test_fraction, ...) leave ids unchanged at their paper values,
    # so the committed cpu-quick database is still recognised as finished by a rerun
    root = Path(__file__).resolve().parents[2]
    runs = expand_grid(load_grid(root / "grids" / "cpu-quick.yaml"))
    stored = {r["id"] for r in rows(connect(root / "benchmarks" / "results" / "cpu-quick" / "results.sqlite"))}
    assert {run.id for run in runs} == stored

"""The command line: verbs exist, --json is machine-readable, errors exit non-zero with a message."""

import json

import pytest
from typer.testing import CliRunner

from csunet.cli import app
from tests.conftest import assert_measured_masks_were_scored

runner = CliRunner()


def test_help_lists_verbs():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for verb in ("doctor", "data", "demo"):
        assert verb in result.output


def test_doctor_json():
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["packages"]["torch"] and report["packages"]["timm"] and report["packages"]["smp"]
    assert report["cpu_count"] >= 1
    assert report["cuda"]["devices"] or report["cuda"]["why_none"]
    assert report["weights_cache"]


def test_data_info_sample_json():
    result = runner.invoke(app, ["data", "info", "sample", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {s: v["pairs"] for s, v in report["splits"].items()} == {"train": 10, "val": 4, "test": 4}
    fractions = report["splits"]["train"]["class_fractions"]
    assert sum(fractions.values()) == pytest.approx(1.0)
    assert fractions["secondary"] == pytest.approx(0.4876, abs=1e-3)


def test_data_info_ebc1_table(benchmark_root):
    result = runner.invoke(app, ["data", "info", "ebc-1", "--data-root", str(benchmark_root)])
    assert result.exit_code == 0, result.output
    assert "2 mask(s) without an image" in result.output
    assert "│    16 │" in result.output


def test_unknown_dataset_is_an_error():
    result = runner.invoke(app, ["data", "info", "super-9"])
    assert result.exit_code == 2
    assert "neither a built-in task" in result.output


def test_missing_data_root_explained(monkeypatch):
    monkeypatch.delenv("CSUNET_DATA", raising=False)
    result = runner.invoke(app, ["data", "info", "super-1"])
    assert result.exit_code == 2
    assert "--data-root" in result.output and "CSUNET_DATA" in result.output


def test_demo_trains_tests_and_segments_on_the_bundled_sample(tmp_path):
    # the real demo configuration (CS-UNet resnet18 + shallow Swin, fast recipe) for 24 steps instead of 600
    result = runner.invoke(app, ["demo", "--steps", "24", "--minutes", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "dataset sample" in text and "NASA IoU (pooled, mean over images)" in text
    (run,) = tmp_path.iterdir()
    assert len(list((run / "predictions").glob("*_overlay.png"))) == 4
    assert len(list((run / "figures").glob("*_panel.png"))) == 4
    config = (run / "config.yaml").read_text()
    assert "encoder: resnet18" in config and "depths: shallow" in config and "embed_dim: 48" in config
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 24 and summary["recipe"] == "fast" and summary["stopped_by"] == "step budget"
    # the demo's predictions measured and reported
    measured = json.loads((run / "measurements" / "summary.json").read_text())
    assert measured["masks"] == 4 and set(measured["per_class"]) == {"matrix", "secondary", "tertiary"}
    assert (run / "measurements" / "images.csv").is_file()
    assert_measured_masks_were_scored(run)
    assert "report, open it in a browser" in text and (run / "report.html").stat().st_size > 100_000

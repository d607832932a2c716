"""Model bundles: written from a checkpoint, valid to bioimage.io's validator, installed and run with the network
switched off, giving the checkpoint's masks; a changed file is refused by name."""

import json
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from csunet.cli import app
from csunet.data import sample_root
from csunet.data.io import read_array
from csunet.export.bundle import MODEL, RDF, BundleError, install, installed, unpack, write_bundle
from csunet.predict import predict


@pytest.fixture
def private_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("CSUNET_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CSUNET_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def offline(monkeypatch):
    """Every attempt to open a network connection fails, as on a lab PC without internet."""

    def refuse(*args, **kwargs):
        raise OSError("network switched off by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def bundle(tiny_run, tmp_path_factory) -> Path:
    return write_bundle(tiny_run["best_checkpoint"], tmp_path_factory.mktemp("bundle") / "tiny.zip",
                        name="csunet tiny sample model", authors=["A. Tester"])  # fmt: skip


def test_a_bundle_is_a_valid_bioimage_io_package_with_our_metadata(bundle, tiny_run):
    from bioimageio.spec import load_description

    description = load_description(bundle, perform_io_checks=True)
    summary = description.validation_summary
    assert summary.status in ("valid-format", "passed"), summary.format()
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        rdf = yaml.safe_load(archive.read(RDF))
    assert {RDF, MODEL, "test_input.npy", "test_output.npy", "README.md"} <= names
    config = rdf["config"]["csunet"]
    test = json.loads((Path(tiny_run["run_dir"]) / "test_metrics.json").read_text())
    assert config["classes"] == ["matrix", "secondary", "tertiary"] and config["tile_size"] == 64
    assert config["test_metrics"]["nasa_iou"] == pytest.approx(test["nasa_iou"])
    assert set(config["files"]) == names - {RDF}
    assert rdf["license"] == "MIT" and rdf["authors"] == [{"name": "A. Tester"}]


def test_installed_offline_it_predicts_the_checkpoints_masks(bundle, tiny_run, tmp_path, private_folders, offline):
    images = sorted((sample_root() / "test").iterdir())[:2]
    runner = CliRunner()
    result = runner.invoke(app, ["models", "install", str(bundle)])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(app, ["models"])
    assert "csunet_tiny_sample_model" in listed.output and "matrix, secondary, tertiary" in listed.output
    # one pass per tile (--tta none): what is compared is the engines and the model's source
    by_name = predict("csunet_tiny_sample_model", images, tmp_path / "by-name", engine="onnx", tta="none",
                      progress=False)  # fmt: skip
    from_checkpoint = predict(
        tiny_run["best_checkpoint"], images, tmp_path / "ckpt", engine="onnx", tta="none", progress=False
    )
    from_zip = runner.invoke(app, ["predict", str(bundle), *map(str, images), "--out", str(tmp_path / "zip"),
                                   "--engine", "onnx", "--tta", "none"])  # fmt: skip
    assert from_zip.exit_code == 0, from_zip.output
    for ours, theirs in zip(by_name, from_checkpoint):
        mask = read_array(ours["mask"])
        assert np.array_equal(mask, read_array(theirs["mask"]))
        assert np.array_equal(mask, read_array(tmp_path / "zip" / Path(ours["mask"]).name))
    # the torch engine on the checkpoint: the same masks but for float rounding at a few pixels
    torch_masks = predict(tiny_run["best_checkpoint"], images, tmp_path / "torch", engine="torch", tta="none",
                          progress=False)  # fmt: skip
    agreement = np.mean([(read_array(a["mask"]) == read_array(b["mask"])).mean()
                         for a, b in zip(by_name, torch_masks)])  # fmt: skip
    assert agreement > 0.999
    assert [b.describe()["classes"] for b in installed()] == [["matrix", "secondary", "tertiary"]]


def test_a_changed_file_is_refused_by_name(bundle, tmp_path, private_folders):
    changed = tmp_path / "changed.zip"
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(changed, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, data[:-1] + bytes([data[-1] ^ 1]) if info.filename == MODEL else data)
    with pytest.raises(BundleError, match="model.onnx does not match its SHA-256"):
        install(changed)
    with pytest.raises(BundleError, match="model.onnx does not match its SHA-256"):
        unpack(changed)
    result = CliRunner().invoke(app, ["predict", str(changed), str(next((sample_root() / "test").iterdir())),
                                      "--out", str(tmp_path / "p")])  # fmt: skip
    assert result.exit_code == 2 and "model.onnx does not match its SHA-256" in result.output
    assert not (tmp_path / "p").exists()
    installed_one = install(bundle)
    (installed_one.folder / MODEL).write_bytes(b"not a model")  # edited after installing: caught on use
    with pytest.raises(BundleError, match="model.onnx does not match"):
        predict(installed_one.folder.name, [next((sample_root() / "test").iterdir())], tmp_path / "q",
                engine="onnx", progress=False)  # fmt: skip

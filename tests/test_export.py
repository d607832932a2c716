"""Exports and engines: ONNX Runtime and OpenVINO for every registry model, outputs equal to PyTorch within 1e-3;
the engine choice; int8 accepted or refused by its accuracy check."""

import importlib.util
import json
import os
import shutil
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import tifffile
import torch
from PIL import Image
from typer.testing import CliRunner

from csunet.checkpoint import CheckpointError, LoadedCheckpoint, load_checkpoint
from csunet.cli import app
from csunet.data import sample_root
from csunet.data.io import read_image
from csunet.errors import SettingsError
from csunet.export import (
    META_KEY,
    OnnxRuntimeModel,
    choose_engine,
    ensure_onnx,
    ensure_openvino,
    export_model,
    load_engine,
    read_onnx_metadata,
)
from csunet.export.int8 import Int8Refused, export_int8
from csunet.export.onnx import onnx_is_current
from csunet.export.openvino import OpenVinoModel, save_ir, write_ir_metadata
from csunet.models import create_model, list_models
from csunet.predict import predict
from csunet.predictor import Predictor, normalised_tensor

runner = CliRunner()

SMALL_SETTINGS = {
    "cs_unet": {"encoder": "resnet18", "img_size": 64, "window_size": 2, "embed_dim": 24, "depths": "shallow"},
    "swin_unet": {"img_size": 64, "window_size": 2, "embed_dim": 24},
    "hiformer": {"variant": "s", "encoder": "resnet18", "img_size": 64, "window_size": 2},
    "transdeeplab": {"levels": 2, "img_size": 64, "window_size": 2},
    "unet": {"encoder": "resnet18"},
    "unet_plusplus": {"encoder": "resnet18"},
}
"""Small instances of every registry model; a model added to the registry must be added here."""


def test_every_registry_model_is_covered():
    assert sorted(SMALL_SETTINGS) == list_models()


@pytest.mark.parametrize("name", sorted(set(SMALL_SETTINGS) - {"swin_unet"}))
def test_onnx_matches_torch(name, tmp_path):
    """swin_unet is left out here only because the module's checkpoint (the tiny Swin-Unet) goes through the same
    export, engines and comparison below: each export takes tens of seconds."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, **SMALL_SETTINGS[name]).eval()
    path = export_model(model, tmp_path / f"{name}.onnx", tile_size=64, metadata={"note": {"model": name}})
    engine = OnnxRuntimeModel(path)
    for batch in (1, 3):  # the batch dimension is dynamic
        tiles = torch.randn(batch, 3, 64, 64)
        with torch.no_grad():
            expected = model(tiles)
        got = engine(tiles)
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=1e-3, rtol=0), (name, (got - expected).abs().max())
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*.data"))  # one self-contained file

    # the same file through OpenVINO (fp32, as the openvino engine converts it)
    ir = tmp_path / f"{name}.openvino.xml"
    converted = ov.convert_model(str(path))
    write_ir_metadata(converted, {META_KEY: {"model": name}})
    save_ir(converted, ir)
    openvino = OpenVinoModel(ir)
    tiles = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(tiles)
    assert torch.allclose(openvino(tiles), expected, atol=1e-3, rtol=0), (
        name,
        (openvino(tiles) - expected).abs().max(),
    )


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory) -> Path:
    """The tiny run's checkpoint with its ONNX and OpenVINO exports beside it, made once for this module (an
    export takes tens of seconds)."""
    copy = tmp_path_factory.mktemp("exported") / "best.ckpt"
    shutil.copy2(tiny_run["best_checkpoint"], copy)
    assert ensure_openvino(copy)[1] is not None  # made now, the ONNX file on the way
    return copy


@pytest.fixture
def checkpoint(exported, tmp_path) -> Path:
    """A private copy of the exported checkpoint's folder; the copies keep their times, so the exports are still
    current."""
    shutil.copytree(exported.parent, tmp_path / "run")
    return tmp_path / "run" / "best.ckpt"


def test_checkpoint_export_carries_metadata_and_is_reused(checkpoint):
    onnx_path = checkpoint.with_suffix(".onnx")
    metadata = read_onnx_metadata(onnx_path)
    loaded = load_engine(checkpoint, "torch")
    assert metadata[META_KEY] == json.loads(json.dumps(loaded.meta.to_dict()))
    assert load_engine(onnx_path, "onnx").classes == loaded.classes  # an .onnx file alone is enough
    assert load_engine(checkpoint.with_name("best.openvino.xml")).classes == loaded.classes  # and an IR file

    # predicting with an exporting engine reuses the exports made beside the checkpoint...
    assert ensure_onnx(checkpoint) == (onnx_path, None)
    assert ensure_openvino(checkpoint) == (checkpoint.with_name("best.openvino.xml"), None)
    # ...until the checkpoint changes
    assert onnx_is_current(checkpoint)
    os.utime(checkpoint)
    assert not onnx_is_current(checkpoint)


def test_predict_engines_agree(checkpoint, tmp_path):
    image = sorted((sample_root() / "test").iterdir())[0]
    engines = ("torch", "onnx", "openvino", "auto")
    records = {
        engine: predict(
            checkpoint,
            [image],
            tmp_path / engine,
            probabilities=True,
            progress=False,
            engine=engine,
            cleanup=["off"],
        )[0]
        for engine in engines
    }
    # the choice is recorded; on this CPU with openvino installed, auto is openvino
    assert json.loads((tmp_path / "auto" / "predictions.json").read_text())["settings"]["engine"] == "openvino"
    plain = load_checkpoint(checkpoint)  # NCHW: the model as trained
    prediction = Predictor(LoadedCheckpoint(plain.model.eval(), plain.meta, checkpoint)).predict_array(
        read_image(image)
    )
    expected = prediction.probabilities.numpy()
    for engine in engines:
        probabilities = tifffile.imread(records[engine]["probabilities"])
        assert np.abs(probabilities - expected).max() < 1e-3, engine
        mask = np.asarray(Image.open(records[engine]["mask"]))
        assert (mask != expected.argmax(0)).mean() < 1e-4, engine  # only exact ties could flip


def test_auto_engine_choice(checkpoint, monkeypatch):
    assert choose_engine(checkpoint, "cpu") == "openvino"
    assert choose_engine(checkpoint, "cuda") == "torch"  # GPU: PyTorch with bf16 autocast
    assert choose_engine(checkpoint.with_name("m.int8.xml")) == "openvino-int8"
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "openvino" else real(name))
    assert choose_engine(checkpoint, "cpu") == "onnx"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert choose_engine(checkpoint, "cpu") == "torch"
    with pytest.raises(SettingsError, match="int8 export best.int8.xml does not exist; make one with"):
        load_engine(checkpoint, "openvino-int8")


def test_the_torch_engine_runs_bf16_only_when_asked(checkpoint):
    """On a GPU the torch engine runs under bf16 autocast (predict); evaluation asks for fp32. Checked on the CPU,
    where autocast works the same way."""
    tiles = torch.randn(2, 3, 64, 64)
    fp32 = load_engine(checkpoint, "torch", "cpu")
    bf16 = load_engine(checkpoint, "torch", "cpu", bf16=True)
    with torch.no_grad():
        expected, got = fp32.model(tiles), bf16.model(tiles)
    assert got.dtype == torch.float32 and 0 < (got - expected).abs().max() < 0.1 * expected.abs().max()


def test_int8_is_kept_when_accurate_and_used_by_auto(checkpoint, tmp_path):
    done = runner.invoke(
        app, ["export", str(checkpoint), "--int8", "--max-drop", "0.05", "--calibration-tiles", "16"]
    )
    assert done.exit_code == 0, done.output
    path = checkpoint.with_name("best.int8.xml")
    assert path.is_file() and path.with_suffix(".bin").is_file()
    assert "best.onnx" in done.output and "up to date" in done.output  # the ONNX export beside it was reused
    assert choose_engine(checkpoint, "cpu") == "openvino-int8"
    loaded = load_engine(checkpoint)
    assert loaded.engine == "openvino-int8"
    result = loaded.model.metadata["int8"]
    said = " ".join(done.output.split())
    assert f"int8 NASA IoU {result['int8_nasa_iou']:.4f}, fp32 {result['fp32_nasa_iou']:.4f}" in said
    assert result["fp32_nasa_iou"] - result["int8_nasa_iou"] <= 0.05
    assert result["calibration"]["tiles"] == 16 and result["calibration"]["split"] == "train"
    assert result["calibration"]["images"] and result["validation"]["split"] == "val"
    # int8 quantised for real: a different function from fp32, close to it on the test micrographs. This
    # two-epoch model's logits are small, so the error is judged against their spread (a correlation; seen here
    # 0.97-0.9999 per image) rather than their size, which makes a relative bound flaky
    images = [
        normalised_tensor(read_image(path), loaded.meta) for path in sorted((sample_root() / "test").iterdir())
    ]
    tiles = torch.stack([image[:, y : y + 64, x : x + 64] for image in images for y, x in ((0, 0), (64, 64))])
    fp32 = load_engine(checkpoint, "openvino").model(tiles)
    int8 = loaded.model(tiles)
    assert (int8 - fp32).abs().mean() > 0
    assert np.corrcoef(int8.flatten().numpy(), fp32.flatten().numpy())[0, 1] > 0.9
    os.utime(checkpoint)  # a retrained checkpoint: the int8 file no longer speaks for it
    assert choose_engine(checkpoint, "cpu") == "openvino"
    with pytest.raises(SettingsError, match="is older than the checkpoint"):
        load_engine(checkpoint, "openvino-int8")


def test_int8_that_loses_accuracy_is_refused_and_fp32_kept(checkpoint, monkeypatch):
    import csunet.export.int8 as int8_module

    class Inverted:  # an int8 model that gets every pixel wrong
        def __init__(self, model):
            self.model, self.device = model, torch.device("cpu")

        def __call__(self, tiles):
            return -self.model(tiles)

    real = int8_module.compiled_as_model
    monkeypatch.setattr(int8_module, "compiled_as_model", lambda ov, model: Inverted(real(ov, model)))
    stale = checkpoint.with_name("best.int8.xml")
    stale.write_text("an earlier export")
    stale.with_suffix(".bin").write_bytes(b"its weights")
    with pytest.raises(Int8Refused, match=r"int8 NASA IoU 0\.\d+ on the val split is 0\.\d+ below fp32's 0\.\d+ "
                                          r"\(allowed: 0\.005"):  # fmt: skip
        export_int8(checkpoint, tiles=4, accuracy_control=False, progress=False)
    assert not stale.exists() and not stale.with_suffix(".bin").exists()
    assert checkpoint.with_name("best.openvino.xml").is_file()
    assert choose_engine(checkpoint, "cpu") == "openvino"


def test_bad_onnx_files_are_named(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="junk.onnx: not an ONNX file"):
        read_onnx_metadata(junk)
    plain = export_model(create_model("unet", encoder="resnet18").eval(), tmp_path / "plain.onnx", tile_size=64)
    with pytest.raises(CheckpointError, match="plain.onnx: no csunet metadata"):
        load_engine(plain, "onnx")
    with pytest.raises(ValueError, match="unknown engine 'tensorrt'"):
        load_engine(plain, "tensorrt")
    with pytest.raises(CheckpointError, match="plain.onnx: no csunet metadata"):
        load_engine(plain, "openvino")

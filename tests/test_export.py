"""ONNX export and the ONNX Runtime engine: every registry model, outputs equal to PyTorch within 1e-3."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from csunet.checkpoint import CheckpointError
from csunet.data import sample_root
from csunet.export import (
    META_KEY,
    OnnxRuntimeModel,
    ensure_onnx,
    export_checkpoint,
    export_model,
    load_engine,
    read_onnx_metadata,
)
from csunet.models import create_model, list_models
from csunet.predict import predict

SMALL_SETTINGS = {
    "cs_unet": {"encoder": "resnet18", "img_size": 64, "window_size": 2, "embed_dim": 24},
    "swin_unet": {"img_size": 64, "window_size": 2, "embed_dim": 24},
    "hiformer": {"variant": "s", "encoder": "resnet18", "img_size": 64, "window_size": 2},
    "transdeeplab": {"levels": 2, "img_size": 64, "window_size": 2},
    "unet": {"encoder": "resnet18"},
    "unet_plusplus": {"encoder": "resnet18"},
}
"""Small instances of every registry model; a model added to the registry must be added here."""


def test_every_registry_model_is_covered():
    assert sorted(SMALL_SETTINGS) == list_models()


@pytest.mark.parametrize("name", sorted(SMALL_SETTINGS))
def test_onnx_matches_torch(name, tmp_path):
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


@pytest.fixture
def checkpoint(tiny_run, tmp_path) -> Path:
    """A private copy of the tiny run's checkpoint, so exports beside it stay in this test's folder."""
    copy = tmp_path / "run" / "best.ckpt"
    copy.parent.mkdir()
    shutil.copy2(tiny_run["best_checkpoint"], copy)
    return copy


def test_checkpoint_export_carries_metadata_and_is_reused(checkpoint, tmp_path):
    path = export_checkpoint(checkpoint, tmp_path / "tiny.onnx")
    metadata = read_onnx_metadata(path)
    loaded = load_engine(checkpoint, "torch")
    assert metadata[META_KEY] == json.loads(json.dumps(loaded.meta))
    assert load_engine(path).classes == loaded.classes  # an .onnx file alone is enough

    # predicting with --engine onnx exports beside the checkpoint once, then reuses the export
    onnx_path, seconds = ensure_onnx(checkpoint)
    assert onnx_path == checkpoint.with_suffix(".onnx") and seconds is not None
    assert ensure_onnx(checkpoint)[1] is None
    os.utime(checkpoint)  # a changed checkpoint makes the export stale
    assert ensure_onnx(checkpoint)[1] is not None


def test_predict_engines_agree(checkpoint, tmp_path):
    image = sorted((sample_root() / "test").iterdir())[0]
    records = {
        engine: predict(checkpoint, [image], tmp_path / engine, probabilities=True, progress=False, engine=engine)[
            0
        ]
        for engine in ("torch", "onnx")
    }
    torch_probs, onnx_probs = (tifffile.imread(records[e]["probabilities"]) for e in ("torch", "onnx"))
    assert np.abs(torch_probs - onnx_probs).max() < 1e-3
    torch_mask, onnx_mask = (np.asarray(Image.open(records[e]["mask"])) for e in ("torch", "onnx"))
    assert (torch_mask != onnx_mask).mean() < 1e-4  # only exact ties could flip


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

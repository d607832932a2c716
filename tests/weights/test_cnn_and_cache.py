"""CNN encoder weights (NASA's smp state dicts), the cache, downloads over a local HTTP server, and the CLI."""

import functools
import http.server
import json
import threading

import pytest
import torch
from typer.testing import CliRunner

from csunet.cli import app
from csunet.models import create_model
from csunet.weights import WeightsError, fetch, import_file, inspect_file, list_weights, load_cnn, load_pretrained
from csunet.weights.catalog import find_source, nasa_file_name

runner = CliRunner()


@pytest.fixture
def http_server(micronet_like_file):
    """Serves the folder of the stand-in MicroNet file on 127.0.0.1."""
    folder = micronet_like_file[0].parent
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_nasa_file_names():
    assert nasa_file_name("resnet50", "micronet") == "resnet50_pretrained_microscopynet_v1.1.pth.tar"
    assert (
        nasa_file_name("resnet50", "image-micronet") == "resnet50_pretrained_imagenet-microscopynet_v1.0.pth.tar"
    )
    assert nasa_file_name("resnext101_32x8d", "micronet") == "resnext101_pretrained_microscopynet_v1.0.pth.tar"
    assert find_source("se_resnext50_32x4d.image-micronet").url.endswith(
        "microscopy_segmentation_models/se_resnext50_32x4d_pretrained_imagenet-microscopynet_v1.0.pth.tar"
    )
    with pytest.raises(ValueError, match="no MicroNet weights for 'convnext_tiny'"):
        find_source("convnext_tiny.micronet")


def test_micronet_state_dict_loads_into_cs_unet(micronet_like_file):
    path, state = micronet_like_file
    model = create_model("cs_unet", encoder="resnet18", img_size=224, window_size=7)
    report = load_cnn(model, path)
    assert report.missing == [] and report.unexpected == [] and len(report.loaded) == len(state)
    for key, value in state.items():
        assert torch.equal(model.cnn.state_dict()[key], value)


def test_cnn_checkpoint_of_another_encoder_fails(micronet_like_file):
    path, _ = micronet_like_file
    model = create_model("cs_unet", encoder="efficientnet-b0", img_size=224, window_size=7)
    with pytest.raises(WeightsError, match="nothing in this checkpoint loads into CNN encoder"):
        load_cnn(model, path)


def test_download_verifies_and_caches(http_server, micronet_like_file, tmp_path):
    path, _ = micronet_like_file
    name = "resnet18.micronet"
    cached = fetch(name, progress=False, url=f"{http_server}/{path.name}")
    assert cached.read_bytes() == path.read_bytes()
    assert cached.with_name(cached.name + ".sha256").exists()
    assert fetch(name, progress=False, url=f"{http_server}/absent") == cached  # served from cache
    assert [w["cached"] for w in list_weights() if w["name"] == name] == [True]
    model = create_model("cs_unet", encoder="resnet18", img_size=224, window_size=7)
    (report,) = load_pretrained(model, cnn="micronet", progress=False)
    assert report.missing == []
    cached.write_bytes(cached.read_bytes()[:-10])  # corrupt the cache
    with pytest.raises(WeightsError, match="cached file is corrupt or was replaced"):
        fetch(name, progress=False)


def test_checksum_mismatch_discards_download(http_server, micronet_like_file, tmp_path):
    from csunet.weights.files import download

    path, _ = micronet_like_file
    target = tmp_path / "w.pth"
    with pytest.raises(WeightsError, match="checksum mismatch"):
        download(f"{http_server}/{path.name}", target, sha256="0" * 64, progress=False)
    assert not target.exists() and not target.with_name("w.pth.part").exists()


def test_failed_download_says_what_to_do(http_server):
    with pytest.raises(WeightsError, match="download failed .*csunet weights import"):
        fetch("resnet34.micronet", progress=False, url=f"{http_server}/missing.pth.tar")


def test_import_then_load_by_source_name(micronet_like_file):
    path, _ = micronet_like_file
    import_file(path, "resnet18.image-micronet")
    model = create_model("cs_unet", encoder="resnet18", img_size=224, window_size=7)
    (report,) = load_pretrained(model, cnn="image-micronet")
    assert len(report.loaded) > 50 and report.missing == []


def test_cli_weights_inspect_and_check(micronet_like_file, microsoft_checkpoint):
    path, state = micronet_like_file
    result = runner.invoke(app, ["weights", "inspect", str(microsoft_checkpoint), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["format"] == "swin (Microsoft)" and info["parameters"] > 28e6
    result = runner.invoke(
        app,
        ["weights", "check", "cs_unet", "--encoder", "resnet18", "--img-size", "224", "--window", "7",
         "--swin", str(microsoft_checkpoint), "--cnn", str(path), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    swin_report, cnn_report = json.loads(result.output)
    assert (
        swin_report["counts"]["resized"] == 0 and swin_report["counts"]["mirrored"] == 6 * 13
    )  # intermediate: 2+2+2 decoder blocks
    assert cnn_report["counts"] == {
        "loaded": len(state),
        "resized": 0,
        "mirrored": 0,
        "missing": 0,
        "unexpected": 0,
    }


def test_cli_refuses_unsafe_file(tmp_path):
    import argparse

    path = tmp_path / "evil.pth"
    torch.save({"cfg": argparse.Namespace(a=1), "w": torch.zeros(1)}, path)
    result = runner.invoke(app, ["weights", "inspect", str(path)])
    assert result.exit_code == 2 and "refused" in result.output


def test_cli_models_json_reports_paper_counts(tmp_path, monkeypatch):
    monkeypatch.setenv("CSUNET_MODELS_DIR", str(tmp_path / "none"))
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["installed"] == []
    rows = {r["name"]: r for r in json.loads(result.output)["architectures"]}
    assert round(rows["cs_unet"]["parameters"] / 1e6, 1) == 56.3
    result = runner.invoke(app, ["models", "--json", "--img-size", "224", "--window", "7", "--classes", "9"])
    rows = {r["name"]: r for r in json.loads(result.output)["architectures"]}
    assert round(rows["swin_unet"]["parameters"] / 1e6, 1) == 27.2
    assert set(rows) == {"cs_unet", "swin_unet", "unet", "unet_plusplus", "hiformer", "transdeeplab"}
    assert round(rows["hiformer"]["parameters"] / 1e6, 2) == 25.51  # variant b (resnet50) by default
    assert round(rows["transdeeplab"]["parameters"] / 1e6, 1) == 21.1  # 2 levels by default
    assert rows["unet"]["parameters_by_part"]["cnn"] == rows["unet_plusplus"]["parameters_by_part"]["cnn"]


def test_inspect_detects_smp_state_dict(micronet_like_file):
    info = inspect_file(micronet_like_file[0])
    assert info["format"] == "cnn / other state dict" and "layer1" in info["groups"]

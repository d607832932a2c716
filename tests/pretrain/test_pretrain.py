"""Pretraining end to end on tiles of the bundled sample, then CS-UNet loads the exported encoder."""

import json
import shutil
from pathlib import Path

from csunet.data import sample_root
from csunet.models import create_model
from csunet.pretrain.tiles import tile_folder
from csunet.pretrain.train import PretrainConfig, pretrain
from csunet.weights import load_pretrained


def test_pretrain_two_epochs_and_cs_unet_loads_every_encoder_tensor(tmp_path):
    collection = tmp_path / "collection"
    for image in sorted((sample_root() / "train").glob("*.tif")):
        kind = "rotated" if "180d" in image.name else "upright"  # two classes, five images each
        (collection / kind).mkdir(parents=True, exist_ok=True)
        shutil.copy(image, collection / kind / image.name)
    rows = tile_folder(collection, tmp_path / "tiles", size=128)
    assert len(rows) == 160
    config = PretrainConfig(
        data=str(tmp_path / "tiles"), img_size=64, window_size=2, epochs=2, warmup_epochs=1, batch_size=32,
        micro_batch=16, out=str(tmp_path / "runs"), name="pre",
    )  # fmt: skip
    summary = pretrain(config, progress=False)
    run = Path(summary["run_dir"])
    sidecar = json.loads((run / "encoder.json").read_text())
    assert sidecar["classes"] == ["rotated", "upright"] and sidecar["depths"] == [2, 2, 2, 2]
    assert sidecar["manifest_sha256"] and 0 <= sidecar["test"]["test_top1"] <= 1
    assert (run / "metrics.csv").is_file() and (run / "accuracy.png").is_file()

    model = create_model("cs_unet", encoder="resnet18", img_size=512, window_size=8)
    (report,) = load_pretrained(model, swin=summary["encoder"])
    assert [k for k in report.missing if k.startswith("swin.")] == []
    assert report.unexpected == [] and report.resized  # relative-position tables 3x3 -> 15x15 windows

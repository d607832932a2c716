"""Folders of any size: an interrupted `predict` continues where it stopped and ends with exactly the outputs of an
uninterrupted run; shards split the work and the last one merges the lists; a folder of another run is refused."""

import json
import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import csunet.predict as predict_module
from csunet.data import sample_root
from csunet.data.errors import DataError
from csunet.data.io import read_image
from csunet.errors import SettingsError
from csunet.measure import measure
from csunet.predict import launch_shard, predict
from csunet.predictor import Predictor
from csunet.sharding import parse_shard

IMAGES = 500


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """1,000 small grey micrographs cut from the sample's test images."""
    folder = tmp_path_factory.mktemp("thousand")
    sources = [read_image(path)[..., 0] for path in sorted((sample_root() / "test").iterdir())]
    rng = np.random.default_rng(0)
    for index in range(IMAGES):
        source = sources[index % len(sources)]
        top, left = rng.integers(0, source.shape[0] - 40, size=2)
        crop = (source[top : top + 40, left : left + 40] * 255).astype(np.uint8)
        Image.fromarray(crop).save(folder / f"m{index:04d}.png")
    return folder


def outputs(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.png"))}


def listed(folder: Path, name: str = "predictions.json") -> list[dict]:
    return json.loads((folder / name).read_text())["images"]


class Crash(Exception):
    pass


def crash_at(monkeypatch, write_number: int) -> None:
    """Make the ``write_number``-th output file write raise, as a killed process would stop there (a mask may be
    written without its overlay)."""
    real, count = predict_module.atomic_write_bytes, {"writes": 0}

    def failing(path, data):
        count["writes"] += 1
        if count["writes"] == write_number:
            raise Crash(path)
        return real(path, data)

    monkeypatch.setattr(predict_module, "atomic_write_bytes", failing)


def test_an_interrupted_run_continues_to_the_same_outputs(tiny_run, folder, tmp_path, monkeypatch):
    checkpoint = tiny_run["best_checkpoint"]
    whole = tmp_path / "whole"
    predict(checkpoint, [folder], whole, tta="none", progress=False, engine="torch")
    expected = outputs(whole)
    assert len(expected) == 2 * IMAGES

    resumed = tmp_path / "resumed"
    # two crashes at random points: writing an overlay (its mask is written: a half-written image), then a mask;
    # the second counts the writes of the continued run
    rng = random.Random(0)
    first = 2 * rng.randrange(1, IMAGES // 2)
    for write_number in (first, 2 * rng.randrange(1, IMAGES - first // 2 - 1) + 1):
        with monkeypatch.context() as patch:
            crash_at(patch, write_number)
            with pytest.raises(Crash):
                predict(checkpoint, [folder], resumed, tta="none", progress=False, engine="torch")
        manifest = json.loads((resumed / "predictions.json").read_text())
        assert manifest["complete"] is False
        with pytest.raises(DataError, match="stopped after"):
            measure([resumed], tmp_path / "m")
    half_done = len((resumed / "predictions.done.jsonl").read_text().splitlines())
    assert 0 < half_done < IMAGES
    records = predict(checkpoint, [folder], resumed, tta="none", progress=False, engine="torch")
    assert outputs(resumed) == expected
    assert listed(resumed) == [{**r, "mask": r["mask"].replace("whole", "resumed"),
                                "overlay": r["overlay"].replace("whole", "resumed")} for r in listed(whole)]  # fmt: skip
    assert len(records) == IMAGES and json.loads((resumed / "predictions.json").read_text())["complete"]


def test_other_settings_or_other_images_are_refused(tiny_run, folder, tmp_path):
    checkpoint = tiny_run["best_checkpoint"]
    images = sorted(folder.iterdir())[:3]
    out = tmp_path / "out"
    predict(checkpoint, images, out, progress=False, engine="torch")
    with pytest.raises(DataError, match=r"other settings \(predictions.json: overlap 0.5 now 0.25\)"):
        predict(checkpoint, images, out, overlap=0.25, progress=False, engine="torch")
    with pytest.raises(DataError, match="1 masks of other images: m0000_mask.png"):
        predict(checkpoint, images[1:], out, progress=False, engine="torch")
    # the same command again: nothing to redo, the same records
    again = predict(checkpoint, images, out, progress=False, engine="torch")
    assert [Path(r["mask"]).name for r in again] == ["m0000_mask.png", "m0001_mask.png", "m0002_mask.png"]
    # --overwrite replaces the earlier run: its files go, the folder's other files stay
    (out / "notes.txt").write_text("mine")
    predict(checkpoint, images[2:], out, progress=False, engine="torch", overwrite=True)
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".png") == ["m0002_mask.png", "m0002_overlay.png"]
    assert (out / "notes.txt").read_text() == "mine" and len(listed(out)) == 1
    # outputs beside their inputs would be read as images next time: refused before anything is written
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(SettingsError, match="the folder of the input m0000.png"):
        predict(checkpoint, [folder], folder, progress=False, engine="torch")
    with pytest.raises(SettingsError, match="the folder of the input m0000.png"):
        predict(checkpoint, images[:1], folder / ".", progress=False, engine="torch")
    assert sorted(p.name for p in folder.iterdir()) == before


def test_shards_split_the_folder_and_the_last_merges(tiny_run, folder, tmp_path):
    checkpoint = tiny_run["best_checkpoint"]
    images = sorted(folder.iterdir())[:10]
    out = tmp_path / "sharded"
    first = predict(checkpoint, images, out, progress=False, engine="torch", shard="1/3")
    assert [Path(r["image"]).name for r in first] == ["m0000.png", "m0003.png", "m0006.png", "m0009.png"]
    assert not (out / "predictions.json").exists()  # not merged until every shard is complete
    with pytest.raises(DataError, match="sharded prediction run that has not finished"):
        measure([out], tmp_path / "m")
    predict(checkpoint, images, out, progress=False, engine="torch", shard="3/3")
    predict(checkpoint, images, out, progress=False, engine="torch", shard="2/3")
    merged = json.loads((out / "predictions.json").read_text())
    assert merged["complete"] and merged["inputs"] == 10 and merged["shards"] == 3
    assert [Path(r["image"]).name for r in merged["images"]] == [p.name for p in images]
    assert measure([out], tmp_path / "m")["masks"] == 10


def test_shard_settings_are_checked(monkeypatch):
    assert parse_shard("2/8") == (2, 8) and parse_shard(None) == (1, 1)
    for bad in ("0/3", "4/3", "1-3", "a/b", "²/2", "1/٣"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    assert launch_shard(None) == (3, 4) and parse_shard(None) == (1, 1)  # under torchrun: the rank's share


def test_decoding_and_writing_overlap_the_engine_and_records_keep_their_order(tiny_run, folder, tmp_path,
                                                                              monkeypatch):  # fmt: skip
    """The next image is decoded, and the last one written, while the engine segments this one; the records, the
    done log and the outputs stay in input order."""
    images = sorted(folder.iterdir())[:6]
    spans: dict[str, list[tuple[float, float, str]]] = {"read": [], "predict": [], "write": []}

    def slowed(kind, function):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            time.sleep(0.15)
            result = function(*args, **kwargs)
            spans[kind].append((started, time.perf_counter(), threading.current_thread().name))
            return result

        return wrapper

    for kind, name in (("read", "read_image"), ("write", "write_outputs")):
        monkeypatch.setattr(predict_module, name, slowed(kind, getattr(predict_module, name)))
    monkeypatch.setattr(Predictor, "predict_array", slowed("predict", Predictor.predict_array))
    records = predict(tiny_run["best_checkpoint"], images, tmp_path / "out", progress=False, engine="torch")

    assert [Path(r["image"]).name for r in records] == [p.name for p in images]
    logged = [
        json.loads(line)["image"] for line in (tmp_path / "out/predictions.done.jsonl").read_text().splitlines()
    ]
    assert logged == [str(p) for p in images]
    assert {thread.split("_")[0] for *_, thread in spans["read"]} == {"csunet-read"}
    assert {thread.split("_")[0] for *_, thread in spans["write"]} == {"csunet-write"}
    assert {thread for *_, thread in spans["predict"]} == {threading.current_thread().name}
    read, segmented, written = (sorted(spans[kind]) for kind in ("read", "predict", "write"))
    for number in range(1, len(images) - 1):
        # image n + 1 is decoded and image n - 1 written while image n is segmented
        assert read[number + 1][0] < segmented[number][1] and written[number - 1][0] < segmented[number][1]
        assert segmented[number][0] < read[number + 1][1] and segmented[number][0] < written[number - 1][1]


def test_three_shards_as_separate_processes_merge_to_a_single_runs_result(tiny_run, folder, tmp_path):
    """A job array in miniature: three `csunet predict --shard K/3` processes at once on one folder; the merged
    predictions.json and every mask equal one process's run over the whole folder."""
    import os
    import subprocess
    import sys

    checkpoint = tiny_run["best_checkpoint"]
    images = tmp_path / "images"
    images.mkdir()
    for path in sorted(folder.iterdir())[:30]:
        (images / path.name).write_bytes(path.read_bytes())
    single = predict(checkpoint, [images], tmp_path / "single", tta="none", progress=False, engine="torch")
    command = [sys.executable, "-m", "csunet", "predict", checkpoint, str(images), "--out", str(tmp_path / "array"),
               "--engine", "torch", "--tta", "none", "--json"]  # fmt: skip
    environment = os.environ | {"OMP_NUM_THREADS": "1"}
    processes = [subprocess.Popen([*command, "--shard", f"{k}/3"], env=environment, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for k in (1, 2, 3)]  # fmt: skip
    for process in processes:
        assert process.wait(timeout=300) == 0, process.stderr.read()
    merged = json.loads((tmp_path / "array" / "predictions.json").read_text())
    assert merged["complete"] and merged["shards"] == 3 and merged["inputs"] == 30

    def comparable(record: dict) -> dict:
        return {key: (Path(value).name if key in ("image", "mask", "overlay") else value)
                for key, value in record.items()}  # fmt: skip

    assert [comparable(r) for r in merged["images"]] == [comparable(r) for r in single]
    for record in single:
        mask = Path(record["mask"]).name
        assert (tmp_path / "array" / mask).read_bytes() == Path(record["mask"]).read_bytes(), mask

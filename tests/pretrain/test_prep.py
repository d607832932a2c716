"""Preparing a pretraining collection: info bands and scale bars removed, tiles cover everything, clusters separate
obviously different textures."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from csunet.pretrain.clean import clean_image, find_info_band, find_scale_bar_boxes
from csunet.pretrain.cluster import cluster_folder
from csunet.pretrain.manifest import read_manifest
from csunet.pretrain.tiles import augment_folder, tile_folder, tile_grid


def micrograph(height=300, width=400, seed=0) -> np.ndarray:
    """Smooth grey texture in [0.2, 0.8], (H, W, 1): no saturated pixels, like a well-exposed micrograph."""
    noise = gaussian_filter(np.random.default_rng(seed).random((height, width)), 3)
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    return (0.2 + 0.6 * noise)[..., None].astype(np.float32)


def with_info_band(image: np.ndarray, rows: int = 40) -> np.ndarray:
    out = image.copy()
    out[-rows:] = 0.0
    for left in range(10, 300, 40):  # white "text" on the black band
        out[-rows + 12 : -rows + 24, left : left + 25] = 1.0
    return out


def with_scale_bar_box(image: np.ndarray) -> np.ndarray:
    out = image.copy()
    out[200:231, 300:381] = 1.0  # white box ...
    out[212:217, 310:371] = 0.0  # ... holding a black bar
    return out


def test_an_info_band_is_found_and_cut_off():
    image = with_info_band(micrograph())
    assert find_info_band(image) == (260, 300)
    cleaned, report = clean_image(image, "band.tif")
    assert cleaned.shape[:2] == (260, 400)
    assert report.to_dict()["removed"] == {"top": 0, "bottom": 40, "left": 0, "right": 0}
    assert np.array_equal(cleaned, image[:260])


def test_a_scale_bar_box_is_found_and_the_cheapest_strip_removed():
    image = with_scale_bar_box(micrograph())
    assert find_scale_bar_boxes(image) == [(200, 300, 231, 381)]
    cleaned, report = clean_image(image, "bar.tif")
    assert report.crop == (0, 0, 0, 100)  # cutting the right 100 columns keeps the most
    assert cleaned.shape[:2] == (300, 300) and cleaned.max() < 0.96


def test_a_clean_micrograph_is_left_alone():
    image = micrograph(seed=3)
    cleaned, report = clean_image(image, "clean.tif")
    assert report.info_band is None and report.boxes == [] and report.crop == (0, 0, 0, 0)
    assert np.array_equal(cleaned, image)


def test_manual_crop_and_impossible_crop():
    image = micrograph()
    cleaned, _ = clean_image(image, "m.tif", crop=(5, 10, 15, 20))
    assert cleaned.shape[:2] == (285, 365)
    with pytest.raises(ValueError, match="would leave nothing"):
        clean_image(image, "m.tif", crop=(200, 100, 0, 0))


@pytest.mark.parametrize(("height", "width", "count"), [(1024, 1024, 4), (1100, 1500, 9), (300, 700, 2)])
def test_tiles_cover_every_pixel(height, width, count):
    corners = tile_grid(height, width, 512)
    assert len(corners) == count
    covered = np.zeros((height, width), dtype=int)
    for top, left in corners:
        covered[top : top + 512, left : left + 512] += 1
    assert covered.min() >= 1
    if height % 512 == 0 and width % 512 == 0:
        assert covered.max() == 1  # no overlap when the image divides


def _save(folder: Path, name: str, image: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray((image[..., 0] * 255).astype(np.uint8)).save(folder / name)


def test_tile_and_augment_folders_write_manifests(tmp_path):
    _save(tmp_path / "in" / "alloy", "a.png", micrograph(600, 520))
    _save(tmp_path / "in", "b.png", micrograph(256, 256, seed=1))
    rows = tile_folder(tmp_path / "in", tmp_path / "tiles", size=256)
    assert len(rows) == 9 + 1 and {r["class"] for r in rows} == {"alloy", ""}  # 600x520 -> 3x3 overlapping
    assert (tmp_path / "tiles" / "alloy" / "a_y344_x264.png").is_file()
    assert len(read_manifest(tmp_path / "tiles")) == 10
    augmented = augment_folder(tmp_path / "tiles", tmp_path / "aug", copies=2)
    assert len(augmented) == 30 and sum(r["step"] == "original" for r in augmented) == 10
    original = np.asarray(Image.open(tmp_path / "aug" / "b_y0_x0_aug0.png"))
    assert original.shape == (256, 256)


def stripes(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:96, 0:96]
    angle, period = rng.uniform(0, np.pi), rng.uniform(6, 10)
    wave = 0.5 + 0.45 * np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period)
    return wave[..., None].astype(np.float32)


def test_cluster_separates_two_texture_families(tmp_path):
    for i in range(6):
        _save(tmp_path / "in", f"stripes_{i}.png", stripes(i))
        _save(tmp_path / "in", f"blobs_{i}.png", micrograph(96, 96, seed=10 + i))
    result = cluster_folder(tmp_path / "in", tmp_path / "out", k_values=[2, 3, 4], weights=None)
    assert set(result["silhouette"]) == {2, 3, 4}
    assert result["clusters"] == max(result["silhouette"], key=result["silhouette"].get)
    forced = cluster_folder(tmp_path / "in", tmp_path / "two", k=2, weights=None, copy=True)
    families = {}
    for row in forced["assignments"]:
        families.setdefault(Path(row["source"]).name.split("_")[0], set()).add(row["cluster"])
    assert families["stripes"].isdisjoint(families["blobs"]) and all(len(c) == 1 for c in families.values())
    assert len(list((tmp_path / "two" / "_contact_sheets").glob("*.png"))) == 2
    assert (tmp_path / "out" / "clusters.csv").is_file()


def test_prep_clean_command_reports_json(tmp_path):
    import json

    from typer.testing import CliRunner

    from csunet.cli import app

    _save(tmp_path / "raw", "sem.png", with_info_band(micrograph()))
    result = CliRunner().invoke(app, ["prep", "clean", str(tmp_path / "raw"), str(tmp_path / "clean"), "--json"])
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.output)
    assert report["info_band_rows"] == [260, 300] and report["removed"]["bottom"] == 40
    assert np.asarray(Image.open(tmp_path / "clean" / "sem.png")).shape == (260, 400)
    missing = CliRunner().invoke(app, ["prep", "tile", str(tmp_path / "nope"), str(tmp_path / "t")])
    assert missing.exit_code == 2 and "no such folder" in " ".join(missing.output.split())

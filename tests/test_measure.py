"""`csunet measure` on synthetic masks with known answers, and on real predictions."""

import csv
import json
import math

import numpy as np
import pytest
from PIL import Image
from skimage.draw import disk
from typer.testing import CliRunner

from csunet.cli import app
from csunet.data import DataError, sample_root
from csunet.measure import measure
from csunet.morphometry import MeasureSettings, astm_grain_size_number, feret_diameters, measure_mask
from csunet.predict import predict

runner = CliRunner()
DISCS = {(100, 100): 30, (100, 280): 35, (280, 150): 40, (300, 330): 32}


def disc_mask(size: int = 400) -> np.ndarray:
    mask = np.zeros((size, size), dtype=np.uint8)
    for centre, radius in DISCS.items():
        mask[disk(centre, radius, shape=mask.shape)] = 1
    mask[disk((5, 380), 20, shape=mask.shape)] = 1  # cut by the border
    return mask


def test_discs_give_their_diameters_within_2_percent():
    result = measure_mask(disc_mask(), MeasureSettings(["matrix", "particle"]), "discs")
    particles = result["particles"]
    assert len(particles) == 5
    inside = [p for p in particles if not p["touches_border"]]
    assert len(inside) == 4
    for particle in inside:
        radius = DISCS[
            min(DISCS, key=lambda c: math.dist(c, (particle["centroid_y_px"], particle["centroid_x_px"])))
        ]
        for key in ("ecd_px", "feret_max_px", "feret_min_px"):
            assert particle[key] == pytest.approx(2 * radius, rel=0.02), (key, radius, particle[key])
        assert particle["aspect_ratio"] == pytest.approx(1, abs=0.05)  # digitised discs are not quite round
    row = result["images"][1]
    assert row["count"] == 5 and row["count_touching_border"] == 1
    # size statistics leave out the cut particle
    assert row["ecd_px_mean"] == pytest.approx(np.mean([p["ecd_px"] for p in inside]))
    assert row["number_density_per_px2"] == pytest.approx(5 / 400**2)
    # nearest neighbour of the (100, 100) disc is the (100, 280) one, 180 px away
    first = min(inside, key=lambda p: math.dist((p["centroid_y_px"], p["centroid_x_px"]), (100, 100)))
    assert first["nn_distance_px"] == pytest.approx(180, abs=0.5)


def test_feret_of_a_rectangle_and_a_single_pixel():
    rectangle = np.zeros((40, 60), dtype=bool)
    rectangle[10:20, 10:50] = True  # 10 x 40 pixels
    longest, shortest = feret_diameters(np.pad(rectangle, 1))
    assert shortest == pytest.approx(10)
    assert longest == pytest.approx(math.hypot(10, 40), abs=0.5)  # unit-disc pixels round the corners off
    assert feret_diameters(np.pad(np.ones((1, 1), bool), 1)) == (1.0, 1.0)
    line = np.zeros((5, 20), dtype=bool)
    line[2, 3:15] = True
    assert feret_diameters(line) == (12.0, 1.0)


def test_min_size_and_border_options():
    mask = disc_mask()
    mask[200, 200] = 1  # one-pixel speck
    settings = MeasureSettings(["matrix", "particle"], min_size_px=5)
    assert measure_mask(mask, settings)["images"][1]["count"] == 5
    settings = MeasureSettings(["matrix", "particle"], min_size_px=1, include_border=True)
    result = measure_mask(mask, settings)
    row = result["images"][1]
    assert row["count"] == 6
    # the speck and the cut disc are in the sizes now
    assert row["ecd_px_mean"] == pytest.approx(np.mean([p["ecd_px"] for p in result["particles"]]))
    assert min(p["ecd_px"] for p in result["particles"]) < 2


def test_area_fractions_are_exact_and_skip_unlabelled_pixels():
    mask = np.zeros((10, 10), dtype=np.uint8)
    mask[:3] = 1  # 30 pixels
    mask[3:4, :7] = 2  # 7 pixels
    mask[9] = 255  # 10 unlabelled
    rows = measure_mask(mask, MeasureSettings(["matrix", "a", "b"]))["images"]
    assert [r["area_fraction"] for r in rows] == [53 / 90, 30 / 90, 7 / 90]


@pytest.mark.parametrize("horizontal", [True, False])
def test_a_band_gives_its_thickness(horizontal):
    mask = np.zeros((300, 500), dtype=np.uint8)
    mask[120:145] = 1  # 25 pixels thick
    if not horizontal:
        mask = np.ascontiguousarray(mask.T)
    settings = MeasureSettings(["background", "oxide"], pixel_size_um=0.5)
    result = measure_mask(mask, settings, "band")
    row = result["images"][1]
    assert row["kind"] == "layer" and row["orientation"] == ("horizontal" if horizontal else "vertical")
    assert abs(row["thickness_um_mean"] - 25 * 0.5) <= 0.5  # within one pixel
    assert row["thickness_um_min"] == row["thickness_um_max"] == 12.5
    assert row["coverage"] == 1.0
    assert len(result["profiles"][0]["thickness"]) == 500


def test_a_tilted_band_gives_its_thickness_across_the_layer():
    # a straight band 25 pixels thick, tilted by 20 degrees: a column cuts 25 / cos(20) = 26.6 pixels of it
    rows, columns = np.mgrid[:400, :600]
    angle = math.radians(20)
    distance = (rows - 80 - columns * math.tan(angle)) * math.cos(angle)  # signed distance from the centre line
    mask = (np.abs(distance) < 12.5).astype(np.uint8)
    row = measure_mask(mask, MeasureSettings(["background", "oxide"]))["images"][1]
    assert abs(row["thickness_px_mean"] - 25) <= 1
    assert row["thickness_px_std"] < 1


def test_a_wavy_band_is_measured_across_the_layer_everywhere():
    mask = np.zeros((200, 400), dtype=np.uint8)
    columns = np.arange(400)
    top = np.round(80 + 10 * np.sin(columns / 30)).astype(int)
    for column in columns:
        mask[top[column] : top[column] + 24, column] = 1  # 24 pixels measured vertically
    result = measure_mask(mask, MeasureSettings(["background", "oxide"]))
    across = 24 / np.sqrt(1 + (np.cos(columns / 30) / 3) ** 2)  # the wave's slope is cos(x / 30) / 3
    profile = np.asarray(result["profiles"][0]["thickness"])
    assert np.abs(profile - across).max() <= 1
    assert result["images"][1]["thickness_px_mean"] == pytest.approx(across.mean(), abs=0.3)


def test_square_grains_give_the_astm_number_by_hand():
    size, pitch = 1000, 100
    mask = np.zeros((size, size), dtype=np.uint8)
    lines = np.arange(50, size, pitch)  # boundaries at 50, 150, ..., 950: the border cuts the outer grains
    mask[lines] = 1
    mask[:, lines] = 1
    settings = MeasureSettings(["grain", "boundary"], pixel_size_um=1.0)  # 1000 x 1000 um = 1 mm^2
    result = measure_mask(mask, settings, "grid")
    row = result["images"][1]
    assert row["kind"] == "boundary"
    assert row["grains"] == 11 * 11 and row["grains_cut_by_border"] == 11 * 11 - 9 * 9
    # by hand: N_A = (81 inside + 40 cut / 2) grains per mm^2; G = 3.321928 log10(N_A) - 2.954
    expected = 3.321928 * math.log10(81 + 40 / 2) - 2.954
    assert row["astm_grain_size_number"] == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(3.704, abs=1e-3)
    # every interior grain is 99 x 99 pixels = 99 um across
    assert row["grain_ecd_um_mean"] == pytest.approx(2 * math.sqrt(99 * 99 / math.pi))
    assert astm_grain_size_number(1, 0, 1.0) == pytest.approx(-2.954)


def test_grain_size_number_needs_a_pixel_size():
    mask = np.zeros((100, 100), dtype=np.uint8)
    mask[50] = 1
    row = measure_mask(mask, MeasureSettings(["grain", "boundary"]))["images"][1]
    assert "astm_grain_size_number" not in row and row["grains"] == 2


def test_measure_writes_tables_in_micrometres(tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(disc_mask()).save(masks / "a_mask.png")
    Image.fromarray(np.ascontiguousarray(disc_mask()[::-1])).save(masks / "b_mask.png")
    (masks / "a_overlay.png").write_bytes(b"ignored: not a mask")
    summary = measure([masks], tmp_path / "out", pixel_size_um=0.25, classes=["matrix", "particle"])
    assert summary["unit"] == "um" and summary["masks"] == 2
    with open(tmp_path / "out" / "particles.csv") as handle:
        particles = list(csv.DictReader(handle))
    assert len(particles) == 10 and {p["image"] for p in particles} == {"a", "b"}
    assert "ecd_um" in particles[0] and "area_um2" in particles[0]
    ecd = sorted(float(p["ecd_um"]) for p in particles if p["touches_border"] == "False")
    assert ecd[0] == pytest.approx(2 * 30 * 0.25, rel=0.02)
    assert summary["per_class"]["particle"]["count"] == 10
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == summary


def test_bad_masks_are_named(tmp_path):
    colour = tmp_path / "colour.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(colour)
    with pytest.raises(DataError, match="colour.png: a 3-D array"):
        measure([colour], tmp_path / "out")
    index = tmp_path / "index.png"
    Image.fromarray(np.full((8, 8), 3, np.uint8)).save(index)
    with pytest.raises(DataError, match="masks hold class 3, but only 2 classes are named"):
        measure([index], tmp_path / "out", classes=["a", "b"])
    with pytest.raises(ValueError, match="unknown measurement kinds"):
        measure([index], tmp_path / "out", kinds={"class_3": "blob"})
    # a grey micrograph is no mask of unnamed classes
    grey = tmp_path / "grey.png"
    Image.fromarray((np.arange(64 * 64) % 226).reshape(64, 64).astype(np.uint8)).save(grey)
    with pytest.raises(DataError, match="hold values up to 225: images, not masks"):
        measure([grey], tmp_path / "out")
    # two masks of one image name would be reported as one
    (tmp_path / "again").mkdir()
    Image.fromarray(np.full((8, 8), 1, np.uint8)).save(tmp_path / "again" / "index.png")
    with pytest.raises(DataError, match="two masks of one image name 'index'"):
        measure([index, tmp_path / "again" / "index.png"], tmp_path / "out", classes=["a", "b", "c", "d"])
    assert not (tmp_path / "out").exists()  # nothing written by a refused command


def test_predictions_of_models_with_other_classes_are_measured_apart(tmp_path):
    for run, classes in (("one", ["matrix", "secondary", "tertiary"]), ("two", ["background", "oxide"])):
        folder = tmp_path / run
        folder.mkdir()
        Image.fromarray(np.full((8, 8), 1, np.uint8)).save(folder / f"{run}_mask.png")
        (folder / "predictions.json").write_text(json.dumps(
            {"classes": classes, "background": 0, "complete": True, "images": [{"mask": f"{run}_mask.png"}]}))  # fmt: skip
    with pytest.raises(DataError, match=r"two: predictions of another model than those in .*one \(classes"):
        measure([tmp_path / "one", tmp_path / "two"], tmp_path / "out")
    assert measure([tmp_path / "one"], tmp_path / "out")["per_class"]["secondary"]["area_fraction_mean"] == 1.0


def test_measure_cli_on_predictions(tiny_run, tmp_path):
    predictions = tmp_path / "predictions"
    images = sorted((sample_root() / "test").iterdir())[:2]  # the tiny model's masks are speckled: slow to measure
    predict(tiny_run["best_checkpoint"], images, predictions, progress=False, engine="torch")
    result = runner.invoke(app, ["measure", str(predictions), "--out", str(tmp_path / "m"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["classes"] == ["matrix", "secondary", "tertiary"]  # from predictions.json
    assert summary["unit"] == "px" and summary["masks"] == 2
    with open(tmp_path / "m" / "images.csv") as handle:
        rows = list(csv.DictReader(handle))
    for image in {r["image"] for r in rows}:
        assert sum(float(r["area_fraction"]) for r in rows if r["image"] == image) == pytest.approx(1, abs=1e-5)
    table = runner.invoke(
        app, ["measure", str(predictions), "--out", str(tmp_path / "m2"), "--pixel-size", "0.0125"]
    )
    assert table.exit_code == 0 and "um" in table.output

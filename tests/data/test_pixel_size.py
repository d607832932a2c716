"""The pixel size microscopes write into TIFF files, written here with tifffile as each vendor's software does:
read with its source, carried by `csunet predict` into each image's record, used by `csunet measure` and said where
it came from, and a warning when it is far from the model's training pixel size."""

import json
import warnings

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from csunet.cli import app
from csunet.data import DataError, DataWarning, sample_root
from csunet.data.io import read_array
from csunet.data.pixel_size import mismatch, pixel_size_from_file
from csunet.measure import measure
from csunet.predict import predict, recorded_pixel_size

IMAGE = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)


def fei(path, width_m: float) -> None:
    header = f"[User]\nDate=12/02/2026\n[Beam]\nHV=5000\n[Scan]\nPixelWidth={width_m}\nPixelHeight={width_m}\n"
    tifffile.imwrite(path, IMAGE, extratags=[(34682, "s", 0, header, True)])


WRITERS = {
    "fei": (lambda p: fei(p, 2.5e-09), 0.0025, "FEI/Thermo metadata ([Scan] PixelWidth)"),
    "zeiss": (lambda p: tifffile.imwrite(p, IMAGE, extratags=[
        (34118, "s", 0, "\r\n0\r\nAP_IMAGE_PIXEL_SIZE\r\nImage Pixel Size = 3.72 nm\r\nDP_DETECTOR\r\nSignal A = SE2\r\n",
         True)]), 0.00372, "Zeiss SEM metadata (AP_IMAGE_PIXEL_SIZE)"),
    "ome": (lambda p: tifffile.imwrite(p, IMAGE, ome=True, metadata={"PhysicalSizeX": 120, "PhysicalSizeXUnit": "nm"}),
            0.12, "OME-TIFF metadata (PhysicalSizeX)"),
    "imagej": (lambda p: tifffile.imwrite(p, IMAGE, imagej=True, resolution=(4.0, 4.0), metadata={"unit": "micron"}),
               0.25, "ImageJ metadata (resolution, unit micron)"),
    "imagej_mu": (lambda p: tifffile.imwrite(p, IMAGE, imagej=True, resolution=(2.0, 2.0),
                                             metadata={"unit": "\\u00B5m"}), 0.5, "ImageJ metadata"),
    "centimetre": (lambda p: tifffile.imwrite(p, IMAGE, resolution=(20000, 20000), resolutionunit="CENTIMETER"),
                   0.5, "TIFF resolution tags (per cm)"),
}  # fmt: skip


@pytest.mark.parametrize("kind", WRITERS)
def test_each_microscope_format_gives_its_pixel_size_and_says_where(tmp_path, kind):
    write, expected_um, source = WRITERS[kind]
    path = tmp_path / f"{kind}.tif"
    write(path)
    found = pixel_size_from_file(path)
    assert found is not None and found.um == pytest.approx(expected_um, rel=1e-6)
    assert found.source.startswith(source)


def test_print_resolutions_and_files_without_metadata_give_none(tmp_path):
    tifffile.imwrite(tmp_path / "dpi.tif", IMAGE, resolution=(72, 72), resolutionunit="INCH")
    tifffile.imwrite(tmp_path / "plain.tif", IMAGE)
    for name in ("dpi.tif", "plain.tif"):
        assert pixel_size_from_file(tmp_path / name) is None
    assert pixel_size_from_file(next((sample_root() / "test").iterdir())) is None  # a PNG


def test_a_pixel_size_far_from_the_training_one_warns(tmp_path):
    assert mismatch(0.12, 0.1) is None and mismatch(0.1, None) is None
    assert "differs from the model's training pixel size 0.1 µm by 50%" in mismatch(0.15, 0.1)
    path = tmp_path / "far.tif"
    fei(path, 2e-07)  # 0.2 µm
    with pytest.warns(DataWarning, match="far.tif: its pixel size 0.2 µm differs"):
        record = recorded_pixel_size(path, 0.1)
    assert record["pixel_size_um"] == pytest.approx(0.2) and "pixel_size_warning" in record
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "pixel_size_warning" not in recorded_pixel_size(path, 0.19)


def test_predict_records_each_images_pixel_size_and_measure_uses_it(tiny_run, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    sources = sorted((sample_root() / "test").iterdir())[:2]
    for source in sources:
        grey = read_array(source)[..., 0]
        path = images / f"{source.stem}.tif"
        tifffile.imwrite(path, grey, extratags=[(34682, "s", 0, "[Scan]\nPixelWidth=5e-08\n", True)])
    records = predict(
        tiny_run["best_checkpoint"], [images], tmp_path / "predicted", engine="torch", progress=False
    )
    assert [r["pixel_size_um"] for r in records] == pytest.approx([0.05, 0.05])
    assert {r["pixel_size_source"] for r in records} == {"FEI/Thermo metadata ([Scan] PixelWidth)"}

    summary = measure([tmp_path / "predicted"], tmp_path / "measured")
    assert summary["pixel_size_um"] == pytest.approx(0.05) and summary["unit"] == "um"
    assert summary["pixel_size_source"] == "the images' files: FEI/Thermo metadata ([Scan] PixelWidth)"
    shown = CliRunner().invoke(app, ["measure", str(tmp_path / "predicted"), "--out", str(tmp_path / "m2")])
    assert shown.exit_code == 0 and "pixel size from the images' files: FEI/Thermo" in shown.output
    given = measure([tmp_path / "predicted"], tmp_path / "m3", pixel_size_um=0.5)
    assert given["pixel_size_um"] == 0.5 and given["pixel_size_source"] == "--pixel-size"

    # one image at another magnification: one length scale cannot serve both
    manifest_path = tmp_path / "predicted" / "predictions.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["images"][1]["pixel_size_um"] = 0.1
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(
        DataError, match=r"record pixel sizes from 0.05 to 0.1 µm: measure each magnification apart"
    ):
        measure([tmp_path / "predicted"], tmp_path / "m4")

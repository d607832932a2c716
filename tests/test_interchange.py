"""Masks in other tools' formats, round-tripped: polygons along pixel edges fill back to their regions (with holes,
in GeoJSON), ImageJ ROI sets read back with roifile, GeoJSON carries the measurements of particles.csv, and an
OME-Zarr holds the image and its labels at the recorded pixel size."""

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from skimage.draw import disk
from skimage.draw import polygon as fill_polygon
from typer.testing import CliRunner

from csunet.cli import app
from csunet.data import SegmentationDataset
from csunet.errors import SettingsError
from csunet.interchange import outlines_by_class, read_ome_zarr, region_outlines, roi_set_bytes
from csunet.measure import measure
from csunet.predict import predict

CLASSES = ["matrix", "particle", "layer"]


def drawn_mask() -> np.ndarray:
    """Three discs (radius 6, 9, 14), a 20x20 square with a 6x6 hole, two squares touching at a corner (one region
    under 8-connectivity), a particle cut by the border, and a layer band."""
    mask = np.zeros((120, 160), np.uint8)
    for (row, col), radius in zip([(20, 20), (20, 60), (60, 40)], [6, 9, 14]):
        mask[disk((row, col), radius)] = 1
    mask[10:30, 100:120] = 1
    mask[17:23, 107:113] = 0
    mask[50:54, 130:134] = 1
    mask[54:58, 134:138] = 1
    mask[0:5, 150:160] = 1
    mask[95:110, :] = 2
    return mask


def fill(geometry, shape) -> np.ndarray:
    """Pixels whose centres lie inside ``geometry`` (pixel (r, c) is the square [c, c+1] x [r, r+1])."""
    filled = np.zeros(shape, bool)
    parts = geometry.geoms if geometry.geom_type == "MultiPolygon" else [geometry]
    for part in parts:
        ring = np.asarray(part.exterior.coords)
        filled[fill_polygon(ring[:, 1] - 0.5, ring[:, 0] - 0.5, shape)] = True
        for hole in part.interiors:
            ring = np.asarray(hole.coords)
            filled[fill_polygon(ring[:, 1] - 0.5, ring[:, 0] - 0.5, shape)] = False
    return filled


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


def test_outlines_fill_back_to_their_regions_with_areas_equal_to_pixel_counts():
    from skimage.measure import label

    mask = drawn_mask()
    outlines = list(region_outlines(mask, 1))
    labels = label(mask == 1, connectivity=2)
    assert len(outlines) == labels.max() == 6  # the corner-touching pair is one region
    for number, geometry in outlines:
        region = labels == number
        assert geometry.area == region.sum()
        assert np.array_equal(fill(geometry, mask.shape), region)
    holed = next(g for _, g in outlines if len(getattr(g, "interiors", [])) == 1)
    assert holed.area == 400 - 36
    assert sum(1 for _, g in outlines if g.geom_type == "MultiPolygon") == 1


def test_an_imagej_roi_set_reads_back_with_roifile(tmp_path):
    """Each region's ROIs (one per part) fill back to the region with its holes filled (ImageJ polygons have no
    holes): IoU >= 0.98 per region, exactly 1 here."""
    from roifile import roiread
    from scipy.ndimage import binary_fill_holes
    from skimage.measure import label

    mask = drawn_mask()
    outlines = outlines_by_class(mask, CLASSES, background=0)
    path = tmp_path / "rois.zip"
    path.write_bytes(roi_set_bytes(outlines))
    rois = roiread(path)
    assert len(rois) == 6 + 1 + 1  # six particles, the corner pair in two parts, one layer
    assert len(zipfile.ZipFile(path).namelist()) == len(rois)
    drawn: dict[tuple[str, int], np.ndarray] = {}
    for roi in rois:
        kind, number = roi.name.split("-")[:2]
        coordinates = roi.coordinates()
        area = drawn.setdefault((kind, int(number)), np.zeros(mask.shape, bool))
        area[fill_polygon(coordinates[:, 1] - 0.5, coordinates[:, 0] - 0.5, mask.shape)] = True
    assert sorted(drawn) == [("layer", 1)] + [("particle", k) for k in range(1, 7)]
    for (kind, number), area in drawn.items():
        region = binary_fill_holes(label(mask == CLASSES.index(kind), connectivity=2) == number)
        assert iou(area, region) >= 0.98, (kind, number)


def test_measure_writes_geojson_with_the_measurements_of_particles_csv(tmp_path):
    mask = drawn_mask()
    from PIL import Image

    Image.fromarray(mask).save(tmp_path / "drawn_mask.png")
    summary = measure([tmp_path / "drawn_mask.png"], tmp_path / "out", pixel_size_um=0.5,
                      kinds={"layer": "layer"}, classes=CLASSES, exports=["geojson", "roi"])  # fmt: skip
    geojson = json.loads((tmp_path / "out" / "drawn.geojson").read_text())
    assert summary["files"]["drawn geojson"] == str(tmp_path / "out" / "drawn.geojson")
    assert (tmp_path / "out" / "drawn_rois.zip").is_file()
    assert geojson["type"] == "FeatureCollection"
    with open(tmp_path / "out" / "particles.csv") as handle:
        particles = {int(row["particle"]): row for row in csv.DictReader(handle)}
    features = [f for f in geojson["features"] if f["properties"]["class"] == "particle"]
    assert len(features) == len(particles) == 6
    from shapely.geometry import shape

    for feature in features:
        properties = feature["properties"]
        row = particles[properties["region"]]
        assert properties["classification"]["name"] == "particle"
        assert properties["ecd_um"] == pytest.approx(float(row["ecd_um"]), rel=1e-5)
        assert properties["area_um2"] == pytest.approx(float(row["area_um2"]), rel=1e-5)
        # the polygon's own area (pixels) within 1 % of the measured one
        assert shape(feature["geometry"]).area * 0.25 == pytest.approx(float(row["area_um2"]), rel=0.01)
    layer = [f for f in geojson["features"] if f["properties"]["class"] == "layer"]
    assert len(layer) == 1 and layer[0]["properties"]["area_px"] == 15 * 160
    with pytest.raises(SettingsError, match="write OME-Zarr with `csunet predict --export ome-zarr`"):
        measure([tmp_path / "drawn_mask.png"], tmp_path / "o2", exports=["ome-zarr"])
    refused = CliRunner().invoke(app, ["measure", str(tmp_path / "drawn_mask.png"), "--export", "shapefile"])
    assert (
        refused.exit_code == 2
        and "unknown export 'shapefile'; choose from roi, geojson, ome-zarr" in refused.output
    )


def test_predict_exports_round_trip_against_the_predicted_masks(tiny_run, tmp_path):
    """On the sample's test images: GeoJSON polygons fill back to the masks (IoU >= 0.98, areas within 1 %), and the
    OME-Zarr holds the image and the mask; a rerun skips them as done."""
    from shapely.geometry import shape

    from csunet.data.io import read_array

    images = SegmentationDataset("sample", "test").pairs[:2]
    inputs = [image for image, _ in images]
    records = predict(tiny_run["best_checkpoint"], inputs, tmp_path / "p", engine="torch", progress=False,
                      exports=["geojson", "ome-zarr", "roi"])  # fmt: skip
    for record, source in zip(records, inputs):
        mask = read_array(record["mask"])
        geojson = json.loads(Path(record["geojson"]).read_text())
        filled = np.zeros(mask.shape, np.uint8)  # background where no polygon is
        for feature in geojson["features"]:
            index = ["matrix", "secondary", "tertiary"].index(feature["properties"]["class"])
            filled[fill(shape(feature["geometry"]), mask.shape)] = index
        for index in (1, 2):
            if (mask == index).any():
                assert iou(filled == index, mask == index) >= 0.98
                polygons = sum(shape(f["geometry"]).area for f in geojson["features"]
                               if f["properties"]["class"] == ["matrix", "secondary", "tertiary"][index])  # fmt: skip
                assert polygons == pytest.approx((mask == index).sum(), rel=0.01)
        stored = read_ome_zarr(record["ome_zarr"])
        assert np.array_equal(stored["mask"], mask)
        assert np.array_equal(stored["image"], read_array(source))
        assert stored["classes"] == ["matrix", "secondary", "tertiary"]
    again = predict(tiny_run["best_checkpoint"], inputs, tmp_path / "p", engine="torch", progress=False,
                    exports=["geojson", "ome-zarr", "roi"])  # fmt: skip
    assert [r["ome_zarr"] for r in again] == [r["ome_zarr"] for r in records]
    changed = CliRunner().invoke(app, ["predict", tiny_run["best_checkpoint"], *map(str, inputs), "--out",
                                       str(tmp_path / "p"), "--engine", "torch"])  # fmt: skip
    assert changed.exit_code == 2 and "other settings" in changed.output

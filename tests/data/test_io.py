"""Image reading: every container, bit depth and channel layout we promise, scaled by dtype range."""

import numpy as np
import pytest
import tifffile
from PIL import Image

from csunet.data import read_image
from csunet.data.io import read_array


def _write(path, array, compression=None):
    if path.suffix == ".tif":
        tifffile.imwrite(path, array, compression=compression, photometric="rgb" if array.ndim == 3 else None)
    elif path.suffix == ".png":
        import imagecodecs

        path.write_bytes(imagecodecs.png_encode(array))
    else:
        Image.fromarray(array).save(path, quality=100)


def _pattern(dtype, channels):
    rng = np.random.default_rng(0)
    top = np.iinfo(dtype).max
    grey = rng.integers(0, top, size=(37, 53), dtype=np.int64).astype(dtype)
    if channels == 0:
        return grey, grey[..., None]
    if channels == "grey-rgb":
        return np.stack([grey] * 3, axis=-1), grey[..., None]
    rgb = rng.integers(0, top, size=(37, 53, 3), dtype=np.int64).astype(dtype)
    if channels == 4:
        alpha = np.full((37, 53, 1), top, dtype=dtype)
        return np.concatenate([rgb, alpha], axis=-1), rgb
    return rgb, rgb


@pytest.mark.parametrize("compression", [None, "zlib", "lzw"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [0, "grey-rgb", 3, 4])
def test_tiff_reads_exactly(tmp_path, compression, dtype, channels):
    stored, expected = _pattern(dtype, channels)
    path = tmp_path / "img.tif"
    _write(path, stored, compression)
    image = read_image(path)
    assert image.dtype == np.float32
    assert image.shape == expected.shape
    np.testing.assert_allclose(image, expected / np.iinfo(dtype).max, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [0, "grey-rgb", 3, 4])
def test_png_keeps_bit_depth(tmp_path, dtype, channels):
    stored, expected = _pattern(dtype, channels)
    path = tmp_path / "img.png"
    _write(path, stored)
    assert read_array(path).dtype == dtype  # Pillow would drop 16-bit RGB to 8 bits
    np.testing.assert_allclose(read_image(path), expected / np.iinfo(dtype).max, atol=1e-7)


def test_jpeg_grey_and_rgb(tmp_path):
    grey = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (32, 1))
    _write(tmp_path / "g.jpg", grey)
    image = read_image(tmp_path / "g.jpg")
    assert image.shape == (32, 64, 1)
    assert np.abs(image[..., 0] - grey / 255).max() < 0.03
    rgb = np.zeros((32, 64, 3), np.uint8)
    rgb[..., 0] = 200
    _write(tmp_path / "c.jpg", rgb)
    image = read_image(tmp_path / "c.jpg")
    assert image.shape == (32, 64, 3)
    assert abs(image[..., 0].mean() - 200 / 255) < 0.03


def test_scaling_uses_dtype_range_not_image_range(tmp_path):
    dim = np.full((8, 8), 1000, np.uint16)
    dim[0, 0] = 0
    _write(tmp_path / "dim.tif", dim)
    image = read_image(tmp_path / "dim.tif")
    assert image.max() == pytest.approx(1000 / 65535)
    assert image.min() == 0.0


def test_planar_tiff_is_moved_to_channels_last(tmp_path):
    planar = np.stack([np.full((10, 12), v, np.uint8) for v in (10, 20, 30)])
    tifffile.imwrite(tmp_path / "p.tif", planar, photometric="rgb", planarconfig="separate")
    image = read_image(tmp_path / "p.tif")
    assert image.shape == (10, 12, 3)
    np.testing.assert_allclose(image[0, 0], np.array([10, 20, 30]) / 255)

"""Mask decoding: index maps, colour tables, NASA's Super rule at 8 and 16 bits, ignore values."""

import numpy as np
import pytest

from csunet.data import IGNORE_INDEX, ColourEncoding, DataError, IndexEncoding
from csunet.data.tasks import BLUE, RED

SUPER = ColourEncoding(colours={BLUE: 1, RED: 2}, default=0)


def _super_overlay(dtype):
    top = np.iinfo(dtype).max
    rng = np.random.default_rng(1)
    grey = rng.integers(0, top, size=(20, 30), dtype=np.int64).astype(dtype)
    rgba = np.stack([grey, grey, grey, np.full_like(grey, top)], axis=-1)
    truth = np.zeros((20, 30), np.uint8)
    rgba[2:6, 3:9, :3] = (0, 0, top)
    truth[2:6, 3:9] = 1
    rgba[10:12, 20:25, :3] = (top, 0, 0)
    truth[10:12, 20:25] = 2
    rgba[15, 15, :3] = (0, 0, top - 1)  # almost blue is still the grey/other rule: matrix
    return rgba, truth


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_super_rule(dtype):
    rgba, truth = _super_overlay(dtype)
    np.testing.assert_array_equal(SUPER.decode(rgba), truth)


def test_index_map_table_and_ignore():
    raw = np.array([[0, 1, 2], [2, 7, 0]], np.uint16)
    encoding = IndexEncoding({0: 0, 1: 1, 2: 1}, ignore=7)
    np.testing.assert_array_equal(encoding.decode(raw), [[0, 1, 1], [1, IGNORE_INDEX, 0]])


def test_index_map_stored_as_grey_rgb():
    raw = np.stack([np.array([[0, 2]], np.uint8)] * 3, axis=-1)
    np.testing.assert_array_equal(IndexEncoding({0: 0, 2: 1}).decode(raw), [[0, 1]])


def test_unknown_values_named_with_pixel_counts():
    raw = np.zeros((10, 10), np.uint8)
    raw[0, :3] = 5
    raw[1, :1] = 9
    with pytest.raises(DataError) as err:
        IndexEncoding({0: 0, 1: 1}).decode(raw, "m.png")
    message = str(err.value)
    assert message.startswith("m.png:")
    assert "5 (3 px)" in message and "9 (1 px)" in message and "4 pixels in all" in message


def test_unknown_colours_named_when_no_default():
    raw = np.zeros((4, 4, 3), np.uint8)
    raw[0, 0] = (0, 255, 0)
    with pytest.raises(DataError, match=r"m.png: mask colours outside .*#00ff00 \(1 px\)"):
        ColourEncoding({(0, 0, 0): 0}).decode(raw, "m.png")


def test_colour_ignore():
    raw = np.zeros((2, 2, 3), np.uint8)
    raw[0, 0] = (255, 255, 0)
    decoded = ColourEncoding({(0, 0, 0): 0}, ignore=(255, 255, 0)).decode(raw)
    assert decoded[0, 0] == IGNORE_INDEX and decoded[1, 1] == 0


def test_encoding_family_mismatch_is_explained():
    with pytest.raises(DataError, match="single-channel"):
        SUPER.decode(np.zeros((3, 3), np.uint8), "m.tif")
    colour = np.zeros((3, 3, 3), np.uint8)
    colour[0, 0] = (255, 0, 0)
    with pytest.raises(DataError, match="colour pixels"):
        IndexEncoding({0: 0}).decode(colour, "m.tif")

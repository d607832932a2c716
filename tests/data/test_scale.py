"""Resampling to a model's scale: masks keep their labels (and the unlabelled value), images are averaged when they
shrink, and both land on the same grid, so a mask still lies on its image."""

import numpy as np
import pytest
import torch

from csunet.data import IGNORE_INDEX
from csunet.data.scale import resample_image, resample_mask, resample_tensor, scaled_size


def test_scaled_sizes_round_and_never_vanish():
    assert scaled_size(1024, 768, 0.35) == (358, 269)
    assert scaled_size(3, 2, 0.125) == (1, 1)
    assert scaled_size(100, 60, 1.0) == (100, 60)


def test_a_mask_keeps_its_labels_and_its_unlabelled_pixels():
    mask = np.zeros((40, 60), np.uint8)
    mask[10:30, 20:40] = 2  # a 20 x 20 square
    mask[:, :4] = IGNORE_INDEX  # an unlabelled strip 4 pixels wide
    half = resample_mask(mask, 0.5)
    assert half.shape == (20, 30) and set(np.unique(half)) == {0, 2, IGNORE_INDEX}
    assert (half == 2).sum() == 10 * 10  # the square, 10 x 10 at half scale, in the same place
    assert np.argwhere(half == 2).min(0).tolist() == [5, 10]
    assert (half[:, :2] == IGNORE_INDEX).all() and not (half[:, 2:] == IGNORE_INDEX).any()
    assert resample_mask(mask, 1.0) is mask


def test_a_shrunk_image_is_averaged_not_aliased():
    stripes = np.zeros((64, 64, 1), np.float32)
    stripes[:, ::2] = 1.0  # one-pixel stripes: picking every other pixel would give all 0 or all 1
    half = resample_image(stripes, 0.5)
    assert half.shape == (32, 32, 1)
    assert half.mean() == pytest.approx(0.5, abs=0.01) and half.std() < 0.05
    flat = np.full((50, 70, 3), 0.3, np.float32)
    assert resample_image(flat, 0.35) == pytest.approx(0.3, abs=1e-5)


def test_image_and_mask_land_on_the_same_grid():
    # an image that is its own mask: a bright square, resampled both ways, still covers the same pixels
    mask = np.zeros((90, 90), np.uint8)
    mask[30:60, 15:75] = 1
    image = mask[..., None].astype(np.float32)
    for scale in (0.5, 0.35, 2.0):
        small_mask, small_image = resample_mask(mask, scale), resample_image(image, scale)[..., 0]
        assert small_mask.shape == small_image.shape
        assert ((small_image > 0.5) == small_mask.astype(bool)).mean() > 0.97


def test_logits_go_back_to_the_image_size():
    logits = torch.randn(3, 45, 61)
    back = resample_tensor(resample_tensor(logits, (16, 21)), (45, 61))
    assert back.shape == (3, 45, 61)
    assert resample_tensor(logits, (45, 61)) is logits


def test_ebc_evaluation_crop_covers_the_same_part_of_a_shrunk_image():
    from csunet.data.transforms import EBC_VALIDATION_CROP, eval_transform

    mask = np.zeros((1024, 1024), np.uint8)
    crop = EBC_VALIDATION_CROP
    mask[crop["y_min"] : crop["y_max"], crop["x_min"] : crop["x_max"]] = 1  # exactly NASA's window
    image = np.zeros((1024, 1024, 3), np.float32)
    for scale in (1.0, 0.5, 0.35):
        out = eval_transform("ebc", scale)(image=resample_image(image, scale), mask=resample_mask(mask, scale))
        assert out["mask"].shape == (round(512 * scale),) * 2
        assert out["mask"].mean() > 0.98  # inside the window, as at full scale (up to one rounded edge row)

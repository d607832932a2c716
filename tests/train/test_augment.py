"""Augmentation presets: shapes, mask values kept exact, EBC's orientation kept, NASA's fixed EBC crop."""

import numpy as np
import pytest
import torch

from csunet.data import IGNORE_INDEX, SegmentationDataset
from csunet.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform
from csunet.train.augment import train_transform


def _layered(size=1024):
    """An EBC-like image: class 1 in the top half only, and a vertical intensity ramp."""
    ramp = np.linspace(0, 1, size, dtype=np.float32)[:, None].repeat(size, axis=1)
    image = np.stack([ramp] * 3, axis=-1)
    mask = np.zeros((size, size), np.uint8)
    mask[: size // 2] = 1
    return image, mask


def test_ebc_training_crops_and_never_turns_layers_upside_down():
    image, mask = _layered()
    transform = train_transform("ebc", 512)
    for seed in range(20):
        transform.set_random_seed(seed)
        out = transform(image=image, mask=mask)
        assert out["image"].shape == (512, 512, 3) and out["mask"].shape == (512, 512)
        rows = out["mask"].max(axis=1)
        assert np.all(np.diff(rows.astype(int)) <= 0), "class 1 must stay above class 0"


def test_super_preset_keeps_mask_values_exact_on_real_sample():
    dataset = SegmentationDataset("sample", "train", transform=train_transform("super", 512))
    for index in range(3):
        image, mask = dataset[index]
        assert image.shape == (3, 512, 512)
        assert set(mask.unique().tolist()) <= {0, 1, 2}
        raw_classes = set(np.unique(dataset.load(index)[1]).tolist())
        assert set(mask.unique().tolist()) == raw_classes  # flips/rotations never invent or lose classes


def test_super_preset_rotates_sometimes():
    image, mask = _layered(512)
    transform = train_transform("super", 512)
    upside_down = 0
    for seed in range(30):
        transform.set_random_seed(seed)
        out = transform(image=image, mask=mask)
        upside_down += int(out["mask"][-1].mean() > out["mask"][0].mean() or out["mask"][:, 0].mean() != 0.5)
    assert upside_down > 5


def test_eval_ebc_fixed_crop_and_normalisation():
    image, mask = _layered()
    out = eval_transform("ebc")(image=image, mask=mask)
    assert out["mask"].shape == (512, 512)
    np.testing.assert_array_equal(out["mask"], mask[356:868, 256:768])
    expected = (image[356:868, 256:768, 0] - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    np.testing.assert_allclose(out["image"][..., 0], expected, atol=1e-5)
    whole = eval_transform("super")(image=image[:512, :512], mask=mask[:512, :512])
    assert whole["image"].shape == (512, 512, 3)


def test_small_images_are_padded_to_the_tile():
    image, mask = _layered(300)
    out = train_transform("default", 512)(image=image, mask=mask)
    assert out["image"].shape == (512, 512, 3)
    padded = torch.as_tensor(out["mask"]) == IGNORE_INDEX
    assert padded.sum() == 512 * 512 - 300 * 300  # padding is unlabelled, not background


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown augmentation preset 'lines'"):
        train_transform("lines")

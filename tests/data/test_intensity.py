"""Per-image intensity standardisation: unchanged by what another specimen or microscope setting does to the grey
levels, and applied the same way in training data and in prediction."""

import numpy as np
import pytest
import torch

from csunet.checkpoint import CheckpointMeta
from csunet.data import SegmentationDataset, sample_description
from csunet.data.intensity import standardise
from csunet.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform
from csunet.errors import SettingsError
from csunet.predictor import normalised_tensor
from csunet.train import TrainConfig
from csunet.train.augment import train_transform


def micrograph() -> np.ndarray:
    """A smooth two-level field with noise, as (H, W, 1) in [0.05, 0.95]."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[:128, :160]
    field = 0.5 + 0.3 * np.sin(rows / 9) * np.cos(cols / 13) + rng.normal(0, 0.05, rows.shape)
    return np.clip(field, 0.05, 0.95)[..., None].astype(np.float32)


@pytest.mark.parametrize("transfer", [lambda x: x**0.45, lambda x: x**2.0, lambda x: 0.3 + 0.4 * x])
def test_equalised_images_do_not_see_a_monotonic_change_of_grey_levels(transfer):
    image = micrograph()
    changed = transfer(image).astype(np.float32)
    assert np.abs(changed - image).mean() > 0.05  # the raw grey levels moved
    # only the 256 histogram bins differ: a few thousandths on average
    assert np.abs(standardise(changed, "equalize") - standardise(image, "equalize")).mean() < 0.01
    out = standardise(image, "equalize")
    assert out.dtype == np.float32 and out.shape == image.shape and out.min() >= 0 and out.max() <= 1
    assert (standardise(np.full((8, 8, 1), 0.3, np.float32), "equalize") == 0.5).all()  # flat: mid-grey
    assert standardise(image, "none") is image


def test_training_data_and_prediction_standardise_alike():
    """The dataset (training, validation, evaluation) and predict's tensor come out the same for one image."""
    description = sample_description()
    dataset = SegmentationDataset(description, "test", eval_transform("super"), intensity="equalize")
    from csunet.data import read_image

    raw = read_image(dataset.pairs[0][0])
    old = {"model": "unet", "model_settings": {}, "classes": ["a", "b", "c"], "out_channels": 3,
           "colours": [[0, 0, 0]] * 3, "channels": 3, "tile_size": 64, "activation": "sigmoid",
           "normalisation": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}}  # fmt: skip
    meta = CheckpointMeta.from_dict({**old, "normalisation": {**old["normalisation"], "per_image": "equalize"}})
    assert torch.allclose(dataset[0][0], normalised_tensor(raw, meta), atol=1e-5)
    plain = SegmentationDataset(description, "test", eval_transform("super"))[0][0]
    assert not torch.allclose(plain, dataset[0][0], atol=0.1)
    # checkpoints from before the setting existed standardise nothing
    assert CheckpointMeta.from_dict(old).normalisation.per_image == "none"


def test_unknown_intensity_and_photometric_settings_are_refused_by_name():
    with pytest.raises(SettingsError, match="unknown intensity standardisation 'percentile'"):
        TrainConfig(intensity="percentile")
    with pytest.raises(SettingsError, match="unknown photometric augmentation 'strong'"):
        TrainConfig(photometric="strong")
    with pytest.raises(SettingsError, match="unknown photometric augmentation 'strong'"):
        train_transform("super", 64, "strong")
    paper = TrainConfig(recipe="paper")
    assert (paper.intensity, paper.photometric) == ("none", "mild")  # the paper's, unchanged


def test_wide_jitter_spans_darker_and_brighter_specimens():
    """Grey levels of one flat image under the wide jitter reach well below and above what the mild one does."""
    image = np.full((64, 64, 3), 0.5, np.float32)
    mask = np.zeros((64, 64), np.uint8)
    spreads = {}
    for kind in ("mild", "wide"):
        transform = train_transform("super", 64, kind)
        means = [float(transform(image=image, mask=mask)["image"].mean()) for _ in range(300)]
        spreads[kind] = np.percentile(means, 95) - np.percentile(means, 5)
    assert spreads["wide"] > 1.5 * spreads["mild"]

"""Every class gets seen: class shares from drawn masks, the sampler's draws, crops centred on their class, and a
class never predicted on validation getting more crops; the synthetic rare-class set's class fractions."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from benchmarks.rare_phases import CLASSES, SIZE, TARGET_FRACTIONS, make_dataset

from csunet.data import IGNORE_INDEX, SegmentationDataset, load_description
from csunet.train.datamodule import CropsPerEpoch
from csunet.train.sampling import RANDOM_CROP, ClassShares, CropSampler, NeverPredictedFeedback

NAMES = ["matrix", "phase", "rare"]


def drawn_masks() -> list[np.ndarray]:
    """Two 100x100 masks: 'phase' 2500 pixels in the first, 'rare' 50 pixels in the first and 150 in the second."""
    first, second = np.zeros((100, 100), np.uint8), np.zeros((100, 100), np.uint8)
    first[:50, :50] = 1
    first[90:95, 0:10] = 2
    second[80:95, 80:90] = 2
    return [first, second]


def test_shares_follow_the_tempered_inverse_pixel_frequency():
    masks = drawn_masks()
    # 20,000 pixels: phase 2500 (12.5 %), rare 200 (1 %); temperature 0.5: weights 12.5**-0.5 : 1**-0.5 ...
    shares = ClassShares.from_masks(masks, NAMES, background=0, temperature=0.5)
    assert shares.names == ["phase", "rare"] and shares.frequencies == pytest.approx([0.125, 0.01])
    expected_rare = 0.01**-0.5 / (0.125**-0.5 + 0.01**-0.5)  # 10 / (2.828 + 10) = 0.7795
    assert shares.shares == pytest.approx([1 - expected_rare, expected_rare])
    assert ClassShares.from_masks(masks, NAMES, 0, temperature=0.0).shares == pytest.approx([0.5, 0.5])
    one = ClassShares.from_masks(masks, NAMES, 0, temperature=1.0).shares  # inversely to the pixel counts
    assert one[1] / one[0] == pytest.approx(2500 / 200)
    # the rare class's images in proportion to its pixels there
    images, pixels = shares.images[2]
    assert images.tolist() == [0, 1] and pixels.tolist() == [50, 150]
    assert "rare 0.78 (1.00% of the pixels)" in shares.describe()


def test_the_sampler_draws_classes_images_and_random_crops_in_their_shares():
    shares = ClassShares.from_masks(drawn_masks(), NAMES, 0, temperature=0.5)
    torch.manual_seed(0)
    draws = list(CropSampler(2, 20000, class_crops=0.5, shares=shares))
    targets = np.array([target for _, target in draws])
    assert len(draws) == 20000
    assert (targets == RANDOM_CROP).mean() == pytest.approx(0.5, abs=0.02)
    assert (targets == 2).mean() == pytest.approx(0.5 * 0.7795, abs=0.02)
    rare_images = np.array([image for image, target in draws if target == 2])
    assert (rare_images == 1).mean() == pytest.approx(0.75, abs=0.03)  # 150 of its 200 pixels
    random_images = np.array([image for image, target in draws if target == RANDOM_CROP])
    assert (random_images == 0).mean() == pytest.approx(0.5, abs=0.02)  # shuffled turns
    assert {target for _, target in CropSampler(2, 100, 0.0, shares)} == {RANDOM_CROP}


def test_a_crop_centred_on_a_class_holds_it(tmp_path):
    root = tmp_path / "drawn"
    from PIL import Image

    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True)
    for index, mask in enumerate(drawn_masks()):
        Image.fromarray(mask).save(root / "masks" / f"m{index}.png")
        Image.fromarray((mask * 100).astype(np.uint8)).save(root / "images" / f"m{index}.png")
    (root / "dataset.yaml").write_text("classes: {matrix: 0, phase: 1, rare: 2}\nimages: images\nmasks: masks\n")
    dataset = SegmentationDataset(load_description(root), "all")
    crops = CropsPerEpoch(dataset, 10, tile_size=32)
    torch.manual_seed(0)
    for image_index in (0, 1):
        for _ in range(20):
            image, mask = crops[image_index, 2]
            assert mask.shape == (32, 32) and bool((mask == 2).any())
    # a random crop is the whole (small) image when the dataset has no cropping transform
    assert crops[0, RANDOM_CROP][1].shape == (100, 100)


def test_random_crops_of_scribbles_centre_on_labelled_pixels(tmp_path):
    """Strokes over 1 % of the bundled sample: a uniformly random 64-pixel crop would mostly hold no stroke; every
    crop training draws holds some, each pixel of its class, and its labelled share is far above the image's."""
    from csunet.data.scribbles import write_scribble_dataset
    from csunet.train.augment import train_transform

    dataset = SegmentationDataset(write_scribble_dataset("sample", tmp_path / "strokes", 0.01, seed=1), "train",
                                  train_transform("super", 64))  # fmt: skip
    crops = CropsPerEpoch(dataset, 40, tile_size=64)
    torch.manual_seed(0)
    shares = []
    for index in range(40):
        image, mask = crops[index % len(dataset), RANDOM_CROP]
        assert mask.shape == (64, 64)
        shares.append(float((mask != IGNORE_INDEX).float().mean()))
    whole = np.mean([(dataset.load(i)[1] != IGNORE_INDEX).mean() for i in range(len(dataset))])
    assert 0.008 < whole < 0.013
    assert min(shares) > 0 and np.mean(shares) > 3 * whole


def test_a_runs_seed_decides_its_augmented_crops():
    """albumentations draws from its own generators; a crop's augmentation follows torch's seed (so a run's seed
    reproduces its crops) and differs between seeds."""
    from csunet.train.augment import train_transform

    crops = CropsPerEpoch(SegmentationDataset("sample", "train", train_transform("super", 64)), 8, 64)

    def drawn(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        return [crops[index % 2, RANDOM_CROP][0] for index in range(6)]

    first, again, other = drawn(0), drawn(0), drawn(1)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not any(torch.equal(a, b) for a, b in zip(first, other))


def test_a_class_never_predicted_on_validation_gets_more_crops():
    shares = ClassShares.from_masks(drawn_masks(), NAMES, 0, temperature=0.0)
    sampler = CropSampler(2, 4000, class_crops=1.0, shares=shares)
    torch.manual_seed(0)
    before = np.mean([target == 2 for _, target in sampler])
    # rows: truth, columns: prediction; 'rare' occurs (row 2) but is never predicted (column 2 empty)
    confusion = torch.tensor([[90, 5, 0], [3, 40, 0], [4, 2, 0]])
    trainer = SimpleNamespace(
        datamodule=SimpleNamespace(crop_sampler=sampler), sanity_checking=False, current_epoch=3
    )
    NeverPredictedFeedback().on_validation_end(trainer, SimpleNamespace(last_val_confusion=confusion))
    torch.manual_seed(0)
    after = np.mean([target == 2 for _, target in sampler])
    assert before == pytest.approx(0.5, abs=0.03) and after == pytest.approx(2 / 3, abs=0.03)
    assert shares.boosted == {"rare": 1}
    for _ in range(5):  # never more than MAX_BOOSTED_SHARE while other classes remain
        NeverPredictedFeedback().on_validation_end(trainer, SimpleNamespace(last_val_confusion=confusion))
    assert shares.shares[1] == pytest.approx(0.75)
    # once predicted, nothing changes
    predicted = torch.tensor([[90, 5, 0], [3, 40, 0], [1, 2, 3]])
    NeverPredictedFeedback().on_validation_end(trainer, SimpleNamespace(last_val_confusion=predicted))
    assert shares.boosted == {"rare": 6}


def test_the_synthetic_rare_phase_set_has_its_class_fractions(tmp_path):
    description = make_dataset(tmp_path / "rare", seed=1, splits={"train": 2, "val": 1})
    dataset = SegmentationDataset(load_description(description), "train")
    assert dataset.description.classes == list(CLASSES) and len(dataset) == 2
    for index in range(len(dataset)):
        image, mask = dataset.load(index)
        assert image.shape == (*SIZE, 3) and mask.shape == SIZE
        fractions = np.bincount(mask.ravel(), minlength=len(CLASSES)) / mask.size
        for name, value in CLASSES.items():
            target = TARGET_FRACTIONS[name]
            # the large classes within 2 points, the rare ones within a third of their share
            assert fractions[value] == pytest.approx(target, abs=0.02 if target > 0.05 else target / 3), name
    again = make_dataset(tmp_path / "again", seed=1, splits={"train": 2, "val": 1})
    assert (again.parent / "train" / "masks" / "train00.png").read_bytes() == (
        tmp_path / "rare" / "train" / "masks" / "train00.png"
    ).read_bytes()  # seeded

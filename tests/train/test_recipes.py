"""The recipe switch: `paper` is the paper's recipe unchanged, `fast` fills what is unset, an explicit value wins,
the data-derived plan says what it chose, and the cosine schedule ends with a validated checkpoint."""

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from csunet.data import SegmentationDataset, sample_description
from csunet.errors import SettingsError
from csunet.train import TrainConfig, train
from csunet.train.augment import train_transform
from csunet.train.datamodule import CropsPerEpoch
from csunet.train.module import warmup_cosine
from csunet.train.plan import plan, validation_steps
from csunet.train.sampling import ClassShares, CropSampler
from tests.conftest import tiny_config


def test_paper_recipe_is_the_papers():
    config = TrainConfig(recipe="paper")
    # SPEC 1.5: Adam at 2e-4, the best weights again at 1e-5 after 30 rounds without improvement, 512 tiles
    assert (config.recipe, config.optimizer, config.lr, config.weight_decay, config.schedule) == (
        "paper", "adam", 2e-4, 0.0, "two-stage")  # fmt: skip
    assert (config.fine_tune_lr, config.patience, config.tile_size, config.grad_clip, config.max_steps) == (
        1e-5, 30, 512, 0.0, 0)  # fmt: skip
    assert config.warmup == 0.0 and config.loss == "bce-dice"  # 0.7 BCE + 0.3 Dice pooled over all classes
    assert plan(config, sample_description())[1] == []  # nothing is derived for the paper's recipe


def test_fast_recipe_fills_what_is_unset_and_explicit_values_win():
    config = TrainConfig(recipe="fast", lr=3e-4)
    assert (config.optimizer, config.lr, config.weight_decay, config.schedule, config.tile_size, config.loss) == (
        "adamw", 3e-4, 0.01, "cosine", 128, "bce-class-dice")  # fmt: skip
    assert TrainConfig(recipe="fast", loss="ce").loss == "ce"
    assert "lr" not in config.from_recipe and "optimizer" in config.from_recipe
    again = TrainConfig.from_dict(config.to_dict())  # what --resume reads back: the same numbers
    assert again.to_dict() == config.to_dict()
    with pytest.raises(SettingsError, match="unknown recipe 'quick'; choose from paper, fast"):
        TrainConfig(recipe="quick")
    with pytest.raises(SettingsError, match="cosine schedule decays over a budget: give --max-steps"):
        TrainConfig(recipe="paper", schedule="cosine")
    with pytest.raises(SettingsError, match="cosine schedule decays over a budget"):
        TrainConfig(recipe="fast", max_steps=0)
    assert TrainConfig(recipe="fast", max_steps=0, max_minutes=5).max_steps == 0  # the minutes alone


def test_class_centred_crops_show_the_rare_class_more_often():
    """The sample's tertiary precipitates cover a few per cent of the pixels, and so of uniformly random crops;
    crops centred on a class drawn with the fast recipe's shares hold several times more."""
    description = sample_description()
    images = SegmentationDataset(description, "train", train_transform("super", 64))
    tertiary = description.classes.index("tertiary")
    shares = ClassShares.from_masks(
        [images.load(i)[1] for i in range(len(images))], description.classes, description.background, 0.5
    )
    counts = {}
    for share in (0.0, 1.0):
        crops = CropsPerEpoch(images, 300, 64)
        torch.manual_seed(0)
        masks = [crops[item][1] for item in CropSampler(len(images), 300, share, shares)]
        assert all(mask.shape == (64, 64) for mask in masks)
        counts[share] = float(torch.stack(masks).eq(tertiary).float().mean())
        if share:  # every centred crop holds its centre's class, never only background
            assert all(bool((mask != description.background).any()) for mask in masks)
    pixels = np.concatenate([images.load(i)[1].ravel() for i in range(len(images))])
    assert (pixels == tertiary).mean() < 0.05
    assert counts[1.0] > 2 * counts[0.0]
    assert TrainConfig(recipe="fast").class_crops == 0.5 and TrainConfig(recipe="paper").class_crops == 0.0
    assert TrainConfig(recipe="fast").class_temperature == 0.5
    with pytest.raises(SettingsError, match="class_crops"):
        TrainConfig(recipe="fast", class_crops=1.5)


def test_the_plan_paces_validation_and_fits_the_step_budget():
    config = TrainConfig(recipe="fast", max_steps=600)
    planned, reasons = plan(config, sample_description())
    # 4 validation images of 512x512 in 128 tiles at overlap 0.25: 5 x 5 tiles each, 100 tiles; 100 * 4 / 3 = 133.3
    # crops between validations, 34 steps of 4; 600 steps round up to 18 whole epochs of 34 = 612
    assert planned.crops_per_epoch == 136 and planned.max_steps == 612
    assert reasons == [
        "crops_per_epoch 136: validating 4 images takes 100 tiles, so this many training crops between validations "
        "keep validation near 20% of the time",
        "max_steps 612: a whole number of 34-step epochs, so the last step is followed by a validation",
    ]
    short, reasons = plan(TrainConfig(recipe="fast", max_steps=30), sample_description())
    # 30 steps of 4 crops cost 360 tile passes; four validations of 100 tiles would cost more: three, 10 steps apart
    assert short.crops_per_epoch == 10 * 4 and short.max_steps == 30
    assert reasons == [
        "crops_per_epoch 40: 3 validations within the 30 steps (validating 4 images takes 100 tiles: more would "
        "cost more than training)"
    ]
    # 48 steps afford 4 validations (576 passes), 50 steps too, but 4 do not divide 50: 2, and the budget stays 50
    assert plan(TrainConfig(recipe="fast", max_steps=48), sample_description())[0].crops_per_epoch == 12 * 4
    longer, reasons = plan(TrainConfig(recipe="fast", max_steps=50), sample_description())
    assert longer.crops_per_epoch == 25 * 4 and longer.max_steps == 50
    assert reasons == ["crops_per_epoch 100: 2 validations within the 50 steps"]
    given, _ = plan(TrainConfig(recipe="fast", crops_per_epoch=20, tile_size=512), sample_description())
    assert (given.crops_per_epoch, given.tile_size) == (20, 512)


def test_a_validation_is_costed_in_training_steps_by_its_tiles():
    """What the time budget reserves for a validation it has not yet seen: 100 tiles of one forward pass each, a
    step 4 crops of 3 passes: 100 / 12 steps, whatever the epoch's length; 24 window tiles: 2 steps."""
    description = sample_description()
    assert validation_steps(TrainConfig(recipe="fast"), description, 128, 1.0) == pytest.approx(100 / 12)
    assert validation_steps(TrainConfig(recipe="fast", crops_per_epoch=40000), description, 128, 1.0) == (
        pytest.approx(100 / 12)
    )
    assert validation_steps(TrainConfig(recipe="fast", val_tiles=24), description, 128, 1.0) == pytest.approx(2)
    # at half scale, 256-pixel images in 128 tiles at least a quarter overlapping (a stride of at most 96): 3 x 3
    # tiles each, 36 in all
    assert validation_steps(TrainConfig(recipe="fast"), description, 128, 0.5) == pytest.approx(36 / 12)


def test_the_plan_shrinks_tiles_to_the_smallest_image(tmp_path):
    from tests.test_first_hour import steel_folder

    root = steel_folder(tmp_path / "steel", count=6)  # 96 x 96 images
    (root / "dataset.yaml").write_text(
        "classes: {matrix: 0, pearlite: 1, inclusion: 2}\nimages: images\nmasks: masks\n"
    )
    from csunet.data import load_description
    from csunet.data.holdout import hold_out

    description = hold_out(load_description(root), 0.2, 0.2, 0)
    planned, reasons = plan(TrainConfig(recipe="fast"), description)
    # 96 is a multiple of 32, but its 1/8 grid (12) does not split into windows of 8: the largest that fits is 64
    assert planned.tile_size == 64 and reasons[0].startswith("tile_size 64: the smallest image is 96 pixels")


def test_region_widths_are_a_layers_thickness_and_a_particles_chord(tmp_path):
    from PIL import Image

    from csunet.data import load_description
    from csunet.train.plan import region_widths

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    mask = np.zeros((200, 300), np.uint8)
    mask[50:90] = 1  # a layer 40 rows thick across the whole width
    yy, xx = np.mgrid[:200, :300]
    mask[(yy - 150) ** 2 + (xx - 150) ** 2 <= 30**2] = 2  # a disc of radius 30
    Image.fromarray(mask).save(tmp_path / "masks" / "a.png")
    Image.fromarray(np.full((200, 300), 128, np.uint8)).save(tmp_path / "images" / "a.png")
    (tmp_path / "dataset.yaml").write_text(
        "classes: {matrix: 0, layer: 1, particle: 2}\nsplits: {train: {images: images, masks: masks}}\n"
    )
    widths, source = region_widths(load_description(tmp_path))
    assert source == "the training masks"
    assert set(widths) == {"layer", "particle"} and widths["layer"] == pytest.approx(40)
    # a disc's mean chord is its area over its diameter: pi r / 2
    assert widths["particle"] == pytest.approx(math.pi * 30 / 2, rel=0.02)


def test_strokes_show_their_regions_widths_through_a_pixel_classifier(tmp_path):
    """Strokes are as wide as the brush: on drawn micrographs with bright, grainy bands 120 rows thick, five-pixel
    strokes alone would say 5; the regions a forest grows from them are about as thick as the bands, and the plan
    shrinks the images as it would for complete masks."""
    from PIL import Image

    from csunet.data import load_description
    from csunet.train.plan import region_widths

    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for index in range(3):
        truth = np.zeros((512, 512), np.uint8)
        top = 100 + 60 * index
        truth[top : top + 120] = 1
        image = np.where(truth == 1, 160, 90) + rng.normal(0, 25, truth.shape)
        strokes = np.full(truth.shape, 255, np.uint8)  # unlabelled
        for row in (top - 60, top + 30, top + 90, top + 200):
            strokes[row : row + 5, 60:450] = truth[row : row + 5, 60:450]
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(tmp_path / "images" / f"{index}.png")
        Image.fromarray(strokes).save(tmp_path / "masks" / f"{index}.png")
    (tmp_path / "dataset.yaml").write_text(
        "classes: {substrate: 0, layer: 1}\nmask: {encoding: index, ignore: 255}\n"
        "splits: {train: {images: images, masks: masks}}\n"
    )
    widths, source = region_widths(load_description(tmp_path))
    assert source == "the regions a pixel classifier grew from the strokes"
    assert 95 < widths["layer"] < 135, widths


def test_the_plan_works_coarser_on_wide_regions_and_widens_tiles_at_full_scale(benchmark_root):
    from csunet.data.tasks import get_task

    description = get_task("ebc-1", benchmark_root)
    small_model = {"model": "cs_unet", "model_settings": {"window_size": 8}}
    planned, reasons = plan(TrainConfig(recipe="fast", **small_model), description)
    # the oxide band is ~180 pixels thick: at 0.35 it is 63 pixels, inside the recipe's 128-pixel tiles
    assert planned.scale == 0.35 and planned.tile_size == 128
    assert reasons[0].startswith(
        "scale 0.35: the narrowest regions (oxide) are 180 pixels across in the training masks, 63 at this"
    )
    # at full scale (given) a tile must hold the band instead: 192 and 224 give token grids that windows of 8 do
    # not split, 256 does; UNet++ has no windows: the next multiple of 32
    full, reasons = plan(TrainConfig(recipe="fast", scale=1.0, **small_model), description)
    assert full.tile_size == 256 and reasons[0].startswith("tile_size 256: oxide regions are 1")
    assert plan(TrainConfig(recipe="fast", scale=1.0, model="unet_plusplus"), description)[0].tile_size == 192
    kept, _ = plan(TrainConfig(recipe="fast", tile_size=128, scale=0.5), description)
    assert (kept.tile_size, kept.scale) == (128, 0.5)  # given explicitly: kept
    super_1, _ = plan(TrainConfig(recipe="fast"), get_task("super-1", benchmark_root))
    assert (super_1.tile_size, super_1.scale) == (128, 1.0)  # 7-pixel tertiary precipitates keep every pixel


def test_warmup_then_cosine_to_zero_by_steps_or_time():
    # 100 steps, warm-up over the first 10 %: step k has made (k + 1) / 100 of the budget
    assert warmup_cosine(0, 100, 0.1) == pytest.approx(0.1) and warmup_cosine(9, 100, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(54, 100, 0.1) == pytest.approx(0.5) and warmup_cosine(99, 100, 0.1) == pytest.approx(0.0)
    assert warmup_cosine(20, 100, 0.1, time_progress=0.55) == pytest.approx(0.5)  # the time budget is further on
    assert warmup_cosine(20, 100, 0.1, time_progress=2.0) == pytest.approx(0.0)
    assert warmup_cosine(0, 100, 0.0) == pytest.approx(1.0, abs=1e-3)  # no warm-up
    # no step budget: the time alone moves the schedule
    assert warmup_cosine(5000, 0, 0.1, time_progress=0.05) == pytest.approx(0.5)
    assert warmup_cosine(5000, 0, 0.1, time_progress=0.55) == pytest.approx(0.5)
    assert warmup_cosine(5000, 0, 0.1, time_progress=1.0) == pytest.approx(0.0)


def test_a_fast_run_ends_on_a_validated_checkpoint(tmp_path):
    config = tiny_config(tmp_path, "fast", recipe="fast", max_steps=8, warmup=0.25, val_overlap=0.0,
                         crops_per_epoch=8, max_epochs=1000, tta="none")  # fmt: skip
    summary = train(config, progress=False)
    with open(Path(summary["run_dir"]) / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert summary["steps"] == 8 and int(rows[-1]["step"]) == 8  # the last step was validated
    assert summary["stopped_by"] == "step budget" and len(rows) >= 4
    assert float(rows[-1]["lr"]) == pytest.approx(1e-3 * warmup_cosine(8, 8, 0.25), abs=1e-9)
    assert math.isfinite(summary["best_val_iou"]) and summary["best_checkpoint"]
    state = torch.load(summary["best_checkpoint"], weights_only=True)
    assert state["csunet"]["recipe"]["optimizer"] == "adamw"
    # the sample's rarest class holds 2-8 % of the pixels: class_weights rare leaves the loss unweighted
    assert (
        state["csunet"]["recipe"]["class_weights"] == "rare" and state["hyper_parameters"]["class_weights"] is None
    )


def test_a_time_budget_ends_with_a_validation_inside_it(tmp_path):
    """One epoch would take far longer than the budget: training stops mid-epoch in time for the validation, which
    runs on the weights so far and writes the checkpoints, all within the minutes given."""
    import time

    minutes = 0.2
    config = tiny_config(
        tmp_path, "budget", recipe="fast", max_steps=0, max_minutes=minutes, crops_per_epoch=40000, tta="none"
    )
    started = time.monotonic()
    summary = train(config, progress=False)
    with open(Path(summary["run_dir"]) / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    fitted = sum(float(row["epoch_seconds"]) for row in rows)
    assert len(rows) == 1 and 0 < summary["steps"] < 10000  # cut short, and validated
    assert fitted <= 60 * minutes * 1.1, f"training and its validation took {fitted:.0f} s"
    # and used most of them: the validation is estimated from its tiles, not from the (huge) epoch's length
    assert fitted >= 60 * minutes * 0.5, f"training and its validation took only {fitted:.1f} s"
    assert summary["best_checkpoint"] and Path(summary["best_checkpoint"]).is_file()
    assert time.monotonic() - started < 60 * minutes + 120  # plus start-up and the test evaluation


def test_a_layered_data_set_trains_and_predicts_at_the_planned_scale(tmp_path):
    """Bands 100 pixels thick: the plan shrinks the images to 0.6, training reads them shrunk, the checkpoint
    records the scale, and a prediction comes back at the image's own size with the bands where they are."""
    from PIL import Image

    from csunet.checkpoint import load_checkpoint
    from csunet.predictor import Predictor

    rng = np.random.default_rng(0)
    for split, count in (("train", 3), ("val", 1)):
        (tmp_path / split / "images").mkdir(parents=True)
        (tmp_path / split / "masks").mkdir(parents=True)
        for index in range(count):
            mask = np.zeros((256, 256), np.uint8)
            top = 40 + 20 * index
            mask[top : top + 100] = 1
            image = np.where(mask == 1, 170, 80) + rng.normal(0, 12, mask.shape)
            Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(tmp_path / split / "images" / f"{index}.png")
            Image.fromarray(mask).save(tmp_path / split / "masks" / f"{index}.png")
    (tmp_path / "dataset.yaml").write_text(
        "classes: {substrate: 0, layer: 1}\nsplits:\n"
        "  train: {images: train/images, masks: train/masks}\n  val: {images: val/images, masks: val/masks}\n"
    )
    config = tiny_config(tmp_path / "runs", "layers", data=str(tmp_path / "dataset.yaml"), recipe="fast",
                         tile_size=None, max_steps=24, crops_per_epoch=None, max_epochs=1000)  # fmt: skip
    summary = train(config, progress=False)
    loaded = load_checkpoint(summary["best_checkpoint"])
    assert loaded.meta.scale == 0.6 and TrainConfig.load(Path(summary["run_dir"]) / "config.yaml").scale == 0.6
    image = np.asarray(Image.open(tmp_path / "val" / "images" / "0.png"), np.float32)[..., None] / 255
    mask = Predictor.of(loaded).predict_array(np.repeat(image, 3, axis=-1)).mask
    assert mask.shape == (256, 256)
    truth = np.asarray(Image.open(tmp_path / "val" / "masks" / "0.png"))
    assert (mask == truth).mean() > 0.9  # easy bands: a few steps find them, at the image's own size

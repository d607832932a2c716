"""Validation that stays cheap on large images: windows chosen so every class is in them, within the tile budget,
derived by the plan when whole images cost too much, and the whole split evaluated once at the end."""

import json
from pathlib import Path

import numpy as np
import torch
from benchmarks.rare_phases import CLASSES, make_dataset

from csunet.checkpoint import read_checkpoint
from csunet.data import load_description
from csunet.train import TrainConfig, train
from csunet.train.plan import VALIDATION_TILE_LIMIT, plan
from csunet.train.validation import ValidationWindows, choose_windows, window_cost
from tests.conftest import TINY_MODEL


def test_windows_hold_every_class_and_keep_to_the_budget():
    masks = [np.zeros((600, 900), np.uint8) for _ in range(3)]
    masks[0][100:400, 100:800] = 1  # a large phase
    masks[2][550:556, 850:856] = 2  # one small rare particle in a corner of the last image
    windows = choose_windows(masks, tile=100, overlap=0.25, limit=40, background=0)
    costs = [window_cost(w.height, w.width, 100, 0.25) for w in windows]
    assert costs[0] == 16 and sum(costs) <= 40  # 300 x 300 windows: 4 x 4 tiles each
    assert any(
        w.image == 2 and w.top <= 550 and w.top + w.height >= 556 and w.left + w.width >= 856 for w in windows
    )
    assert any(w.image == 0 and (masks[0][w.top : w.top + w.height, w.left : w.left + w.width] == 1).any()
               for w in windows)  # fmt: skip
    assert windows == sorted(windows, key=lambda w: (w.image, w.top, w.left))  # the same order every epoch
    # the dataset view cuts both image and mask
    data = [(torch.zeros(3, *m.shape), torch.from_numpy(m)) for m in masks]
    view = ValidationWindows(data, windows)
    image, mask = view[len(view) - 1]
    assert image.shape[1:] == mask.shape == (300, 300) and int((mask == 2).sum()) == 36
    assert view.tiles(100, 0.25) == sum(costs)


def test_large_validation_images_are_validated_on_windows_and_whole_at_the_end(tmp_path):
    large = make_dataset(tmp_path / "large", splits={"train": 1, "val": 1})
    planned, reasons = plan(TrainConfig(**TINY_MODEL, data=str(large), recipe="fast"), load_description(large))
    # one 768 x 1024 image in 64-pixel tiles at overlap 0.25: 16 x 21 = 336 tiles
    assert planned.val_tiles == VALIDATION_TILE_LIMIT
    assert reasons[0].startswith(f"val_tiles {VALIDATION_TILE_LIMIT}: validating 1 images takes 336 tiles")
    assert plan(TrainConfig(recipe="fast"), load_description("sample"))[0].val_tiles == 0  # small: whole images
    # training validates on windows worth 24 tiles, then the whole validation image once
    small = make_dataset(tmp_path / "small", splits={"train": 1, "val": 1}, shape=(256, 320))
    config = TrainConfig(**TINY_MODEL, data=str(small), recipe="fast", max_steps=2, batch_size=2, val_tiles=24,
                         out=str(tmp_path), name="windows", decide_cleanup=False)  # fmt: skip
    summary = train(config, progress=False)
    full = summary["full_validation"]
    assert set(full["per_class_iou"]) == set(CLASSES) and 0 <= full["nasa_iou"] <= 1
    assert json.loads(Path(summary["run_dir"], "summary.json").read_text())["full_validation"] == full
    # inclusions and cracks hold under 1 % of the pixels: the fast recipe weighs the loss (class_weights: rare)
    weights = read_checkpoint(summary["best_checkpoint"])["hyper_parameters"]["class_weights"]
    assert weights[CLASSES["inclusion"]] > weights[CLASSES["carbide"]] > weights[CLASSES["matrix"]]

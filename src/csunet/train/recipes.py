"""Training recipes: named sets of training settings that a configuration starts from.

- ``paper``: the CS-UNet paper's recipe (SPEC 1.5), unchanged, for reproduction: Adam at 2e-4 until validation
  stops improving, then the best weights at 1e-5 (two stages, patience 30).
- ``fast``: made for small compute (a CPU, minutes, a handful of labelled images), chosen by measurement
  (``benchmarks/results/recipe_ablation.md``): 128-pixel crops (four times the steps per minute of 256), on
  images shrunk where even the narrowest class's regions are wide (EBC's ~180-pixel oxide layer: scale 0.35, so a
  tile sees the layer and both its sides; wider tiles where regions are still wider than a tile; ``train/plan.py``),
  AdamW at
  4e-4 with weight decay 0.01, a linear warm-up over the first 5 % of the budget and a cosine decay to zero at its
  end (a number of optimiser steps, or minutes, whichever runs out first), gradient clipping at 1, half the crops
  centred on a pixel of a class other than the background (EBC-1's thin oxide layer: IoU 0.000 -> 0.567 in 5 CPU
  minutes, ``benchmarks/results/train_cpu.md``), the class drawn by tempered inverse pixel frequency and more of a
  class never predicted on validation (``train/sampling.py``), the paper's loss with one Dice per class averaged instead of one
  Dice pooled over all classes (Super-1 tertiary IoU 0.473 -> 0.633 in 5 CPU minutes; the same loss for one-channel
  binary tasks), and validation paced so that it costs about a fifth of the time (on fixed windows of large
  images, ``train/validation.py``); its end-of-run evaluations predict each tile four times, flipped (``--tta
  auto``, what `predict` runs by default; Super-4's test images 0.775 -> 0.808, ``benchmarks/results/tta.md``),
  where the paper's predict it once, as the paper did. It is the default (``DEFAULT_RECIPE``).

Every value is a field of :class:`csunet.train.TrainConfig`; a value given explicitly wins over the recipe's.
"""

from __future__ import annotations

RECIPES: dict[str, dict] = {
    "paper": {
        "optimizer": "adam",
        "lr": 2e-4,
        "weight_decay": 0.0,
        "schedule": "two-stage",
        "warmup": 0.0,
        "grad_clip": 0.0,
        "max_steps": 0,
        "tile_size": 512,
        "scale": 1.0,
        "class_crops": 0.0,
        "class_temperature": 0.0,
        "class_weights": "none",
        "loss": "bce-dice",
        "intensity": "none",
        "photometric": "mild",
        "val_tiles": 0,
        "tta": "none",
    },
    "fast": {
        "optimizer": "adamw",
        "lr": 4e-4,
        "weight_decay": 0.01,
        "schedule": "cosine",
        "warmup": 0.05,
        "grad_clip": 1.0,
        "max_steps": 600,
        "tile_size": 128,
        "scale": 1.0,
        "class_crops": 0.5,
        "class_temperature": 0.5,
        "class_weights": "rare",
        "loss": "bce-class-dice",
        "intensity": "none",
        "photometric": "mild",
        "tta": "auto",
    },
}
DEFAULT_RECIPE = "fast"
"""What `csunet train` uses when no recipe is named: the paper's recipe trains for hours on a CPU (512 tiles,
patience 30, two stages) and stays behind in minutes (``benchmarks/results/train_cpu.md``); on a GPU there is no
measurement yet that says otherwise."""
SMALL_MODEL = {
    "model": "cs_unet",
    "model_settings": {"encoder": "resnet18", "depths": "shallow", "embed_dim": 48, "window_size": 8},
}
"""The model for minutes on a CPU (the demo's, and napari's first model from strokes): CS-UNet with a resnet18 CNN
and one Swin block per stage at embed 48; on two CPU cores it learns far more per minute than the paper's Swin-T
(benchmarks/results/recipe_ablation.md)."""
OPTIMIZERS = ("adam", "adamw")
CLASS_WEIGHTS = ("none", "auto", "rare")
"""Class weightings of the loss by name (``class_weights``; a list of numbers is the other kind)."""
RARE_SHARE = 0.01
"""``class_weights: rare`` weighs the loss when a class holds less than this share of the training pixels: there
class-centred crops alone left the rarest classes behind (``benchmarks/results/rare_phases.md``), while on the NASA
tasks, whose rarest class holds 2-3 %, weighting cost validation IoU (``benchmarks/results/train_cpu.md``)."""
SCHEDULES = ("two-stage", "cosine")
PHOTOMETRIC = ("mild", "wide")
"""Photometric augmentations (``csunet.train.augment``): the paper's, and one spanning other specimens."""
ACTIVATIONS = {"bce-dice": "sigmoid", "bce-class-dice": "sigmoid", "ce": "softmax", "focal": "softmax",
               "tversky": "softmax"}  # fmt: skip
"""How each loss turns logits into probabilities (what prediction reports as probability maps)."""
LOSSES = tuple(ACTIVATIONS)

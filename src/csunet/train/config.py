"""The training configuration: every number a field, unset ones from a recipe (the fast one by default).

A run folder stores the resolved configuration as ``config.yaml``; ``--resume`` reads it back, so a resumed run
trains exactly what the interrupted one did.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from csunet.data.intensity import INTENSITY_METHODS
from csunet.data.scale import MAX_SCALE, MIN_SCALE
from csunet.data.transforms import PRESETS
from csunet.errors import SettingsError, check_choice, check_field_types, check_range
from csunet.hardware import check_hardware
from csunet.inference import TTA_MODES
from csunet.train.recipes import CLASS_WEIGHTS, DEFAULT_RECIPE, LOSSES, OPTIMIZERS, PHOTOMETRIC, RECIPES, SCHEDULES
from csunet.utils import read_yaml


@dataclass
class TrainConfig:
    data: str = "sample"
    """Built-in task name (``super-1``), ``sample``, or a dataset description YAML."""
    data_root: str | None = None
    """NASA benchmark folder (Super1..4, EBC1..3); default $CSUNET_DATA."""
    model: str = "cs_unet"
    """Architecture from `csunet models`."""
    model_settings: dict = field(default_factory=dict)
    """Settings of the architecture (``encoder``, ``depths``, ``window_size``, ...); the rest are its defaults
    (``csunet models``). A name the architecture does not take is an error."""
    recipe: str | None = None
    """Where unset settings come from: fast (the default: minutes on a CPU, a handful of images; AdamW, warm-up and
    cosine decay over 600 steps, class-centred crops, paced validation) or paper (the CS-UNet paper's, unchanged,
    for reproducing it: hours on a CPU)."""
    tile_size: int | None = None
    """Training crop and inference tile size (for CS-UNet and Swin-Unet also the model's input size); default:
    the recipe's, no larger than the smallest image."""
    scale: float | None = None
    """Resample the images by this factor before the model sees them, in training and prediction alike (0.5: half
    the pixels across, so a tile covers twice the micrograph; masks and measurements stay in the image's pixels);
    default: the recipe's (paper 1) or, with the fast recipe, derived from how wide the classes' regions are."""
    swin_weights: str | None = None
    """Swin checkpoint file or catalogue name."""
    cnn_weights: str | None = None
    """CNN encoder weights: imagenet, micronet, image-micronet, or a file."""
    init_weights: str | None = None
    """Start from this csunet checkpoint's weights (fine-tuning on new or corrected masks): the same model,
    settings, tile size and classes; the optimiser and schedule start afresh."""
    augment: str = "auto"
    """``super``, ``ebc``, ``default``, or ``auto`` (from the task name)."""
    loss: str | None = None
    """bce-dice (the paper's), bce-class-dice (its Dice averaged over classes: rare classes count), ce, focal or
    tversky; default: the recipe's."""
    intensity: str | None = None
    """Per-image standardisation before the dataset-wide normalisation, in training and prediction alike: none, or
    equalize (each image's histogram equalised, so another specimen's or microscope's grey levels look like the
    training images'); default: the recipe's."""
    photometric: str | None = None
    """Photometric augmentation: mild (the paper's) or wide (gamma 0.4-2.5, contrast and brightness +-40 %, a
    brightness gradient: what another specimen or setting looks like); default: the recipe's."""
    class_weights: str | list[float] | None = None
    """How the loss weighs the classes: ``none``; ``auto`` (each class by the inverse of its share of the training
    pixels to the power of the class temperature, or median-frequency balancing where that is 0); ``rare`` (auto
    when a class holds under 1 % of the training pixels, else none); or one weight per class; default: the
    recipe's."""
    optimizer: str | None = None
    """adam or adamw; default: the recipe's."""
    lr: float | None = None
    """Peak learning rate (two-stage: stage 1's); default: the recipe's."""
    weight_decay: float | None = None
    """Weight decay (AdamW: decoupled); default: the recipe's."""
    schedule: str | None = None
    """two-stage (the paper's: reload the best weights at fine_tune_lr after patience rounds) or cosine (linear
    warm-up, cosine decay to 0 at max_steps or max_minutes, whichever comes first); default: the recipe's."""
    warmup: float | None = None
    """Share of the budget (steps or minutes, whichever runs out first) spent warming up linearly (cosine
    schedule); default: the recipe's."""
    grad_clip: float | None = None
    """Clip the gradient norm to this (0: no clipping); default: the recipe's."""
    max_steps: int | None = None
    """Optimiser steps to train for (0: no cap, epochs and minutes decide; with the cosine schedule the minutes are
    then its budget); default: the recipe's. A step budget trains the same on a slow machine
    as on a fast one; max_minutes stays a cap."""
    fine_tune_lr: float = 1e-5
    """Stage-2 learning rate after reloading the best weights."""
    patience: int = 30
    """Validation rounds without improvement before fine-tuning starts, and again before training stops."""
    max_epochs: int = 1000
    """Cap on epochs."""
    max_minutes: float | None = None
    """Cap on training wall time (default: none)."""
    batch_size: int = 4
    """Crops per step (and tiles per inference batch)."""
    crops_per_epoch: int | None = None
    """Random crops drawn per epoch (between validations); default: one per training image (paper), or enough
    that validation takes about a fifth of the time (fast)."""
    class_crops: float | None = None
    """Share of training crops centred on a pixel of a class other than the background (so thin layers and scarce
    phases are seen; csunet.train.sampling); default: the recipe's."""
    class_temperature: float | None = None
    """How class-centred crops favour rare classes: each class is drawn in proportion to its share of the training
    pixels to the power of minus this (0: every class equally often, 1: inversely to its pixel count); a class
    never predicted on validation gets more; default: the recipe's."""
    val_split: str = "val"
    """Split that validates (chooses the best checkpoint and drives the schedule)."""
    val_tiles: int | None = None
    """Validate after each epoch on fixed windows of the validation images worth at most this many tiles, every
    class in them (0: whole images; csunet.train.validation), and on the whole split once at the end; default: the
    recipe's (paper 0) or, with the fast recipe, derived: windows when whole images take more than 128 tiles."""
    val_fraction: float = 0.2
    """For data given as one folder pair: the share of images held out for validation."""
    test_fraction: float = 0.2
    """For data given as one folder pair: the share of images held out for the final test (0: none)."""
    val_overlap: float = 0.25
    """Tile overlap when validating whole images."""
    tta: str | None = None
    """Test-time augmentation of the evaluations at the end (the whole validation split, the clean-up decided on
    it, the test split): auto (what `predict` runs by default: four flips; one pass for the ebc preset), none,
    hflip, flips, d4; default: the recipe's (fast auto, paper none, as the paper evaluated)."""
    pseudo_labels: bool = False
    """For sparse masks (strokes): after half the budget, give the unlabelled training pixels the class the model
    is sure of, and train on from that model for the rest (off: it did not pay in minutes; docs/data.md)."""
    decide_cleanup: bool = True
    """At the end, evaluate the whole validation split once more and keep the clean-up rules that bring its
    measurements closer to the truth (csunet.cleanup); the checkpoint carries them."""
    workers: int | None = None
    """DataLoader workers (default: 0 on CPU, up to 8 on GPU)."""
    seed: int = 0
    """Random seed."""
    deterministic: bool = False
    """Deterministic algorithms (slower)."""
    accelerator: str = "auto"
    """Lightning accelerator: auto, cpu, gpu."""
    devices: str = "auto"
    """Lightning devices: auto, a count, or a list."""
    num_nodes: int = 1
    """Machines taking part."""
    strategy: str = "auto"
    """Lightning strategy: auto, ddp, ..."""
    precision: str = "32-true"
    """Lightning precision: 32-true, bf16-mixed, 16-mixed (or bf16-true, 16-true, 64-true)."""
    compile: bool = False
    """torch.compile the training forward pass: 1.5x the steps per second on an H200 with bf16 after about two
    minutes of compiling; no gain on a small CPU (benchmarks/results)."""
    out: str = "runs"
    """Folder of run folders."""
    name: str | None = None
    """Run folder name (default: made from data, model and time)."""

    def __post_init__(self) -> None:
        from csunet.inference import MAX_OVERLAP
        from csunet.models.registry import model_entry, resolved_settings  # imports the models: only now

        check_field_types("training setting", self)
        self.recipe_was_default = self.recipe is None
        if self.recipe is None:
            self.recipe = DEFAULT_RECIPE
        if self.recipe not in RECIPES:
            raise SettingsError(f"unknown recipe {self.recipe!r}; choose from {', '.join(RECIPES)}")
        # settings left unset take the recipe's value (and the data-derived plan may still adjust those)
        self.from_recipe = [name for name, value in RECIPES[self.recipe].items() if getattr(self, name) is None]
        for name in self.from_recipe:
            setattr(self, name, RECIPES[self.recipe][name])
        choices = {"optimizer": ("optimizer", OPTIMIZERS), "schedule": ("schedule", SCHEDULES),
                   "augment": ("augmentation preset", ("auto", *PRESETS)),
                   "intensity": ("intensity standardisation", INTENSITY_METHODS),
                   "photometric": ("photometric augmentation", PHOTOMETRIC), "loss": ("loss", LOSSES),
                   "tta": ("test-time augmentation", TTA_MODES)}  # fmt: skip
        for name, (what, allowed) in choices.items():
            check_choice(name, getattr(self, name), allowed, what)
        check_hardware(self.accelerator, self.devices, self.precision)
        if self.init_weights and (self.swin_weights or self.cnn_weights):
            raise SettingsError(
                "--init-weights starts from a whole trained model; leave out --swin-weights/--cnn-weights"
            )
        if self.schedule == "cosine" and not self.max_steps and not self.max_minutes:
            raise SettingsError(
                "the cosine schedule decays over a budget: give --max-steps (optimiser steps) or --max-minutes"
            )
        model_entry(self.model)  # unknown model or setting names: an error now
        try:
            resolved_settings(self.model, self.model_settings)
        except SettingsError as exc:
            raise SettingsError(f"training setting model_settings: {exc}") from None
        owner = "training setting"
        for name in ("patience", "max_epochs", "batch_size", "num_nodes"):
            check_range(owner, name, getattr(self, name), 1)
        check_range(owner, "crops_per_epoch", self.crops_per_epoch, 1, optional=True)
        check_range(owner, "workers", self.workers, 0, optional=True)
        check_range(owner, "seed", self.seed, 0, 2**32 - 1)
        check_range(owner, "val_tiles", self.val_tiles, 0, optional=True)
        check_range(owner, "tile_size", self.tile_size, 32)
        check_range(owner, "scale", self.scale, MIN_SCALE, MAX_SCALE)
        for name in ("weight_decay", "grad_clip", "max_steps"):
            check_range(owner, name, getattr(self, name), 0)
        check_range(owner, "warmup", self.warmup, 0, 1, high_open=True)
        check_range(owner, "class_crops", self.class_crops, 0, 1)
        check_range(owner, "class_temperature", self.class_temperature, 0, 1)
        check_range(owner, "max_minutes", self.max_minutes, 0, low_open=True, optional=True)
        check_range(owner, "lr", self.lr, 0)
        check_range(owner, "fine_tune_lr", self.fine_tune_lr, 0)
        check_range(owner, "val_fraction", self.val_fraction, 0, 1, low_open=True, high_open=True)
        check_range(owner, "test_fraction", self.test_fraction, 0, 1, high_open=True)
        check_range(owner, "val_overlap", self.val_overlap, 0, MAX_OVERLAP)
        if isinstance(self.class_weights, str) and self.class_weights not in CLASS_WEIGHTS:
            raise SettingsError(
                f"class_weights takes {', '.join(CLASS_WEIGHTS)} or one number per class, not {self.class_weights!r}"
            )
        for weight in self.class_weights if isinstance(self.class_weights, list) else []:
            check_range(owner, "class_weights", weight, 0)

    def resolved_preset(self, dataset_name: str | None = None) -> str:
        """The augmentation preset: the one given, or from the data set's name (a copy of a task, such as its
        strokes, keeps the task's preset), else from the data's file name."""
        if self.augment != "auto":
            return self.augment
        name = (dataset_name or Path(self.data).stem).lower()
        return "ebc" if name.startswith("ebc") else "super" if name.startswith(("super", "sample")) else "default"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def unknown_settings(cls, data: dict) -> str | None:
        """A sentence naming the keys of ``data`` that are no training setting, or None when there are none."""
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(str(key) for key in set(data) - set(known))
        if not unknown:
            return None
        return f"unknown training settings {', '.join(unknown)}; the settings are {', '.join(known)}"

    @classmethod
    def from_dict(cls, data: dict, source: str = "training configuration") -> TrainConfig:
        if not isinstance(data, dict):
            raise SettingsError(f"{source}: expected a mapping of training settings, not {data!r}")
        problem = cls.unknown_settings(data)
        if problem:
            raise SettingsError(f"{source}: {problem}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(read_yaml(path, SettingsError) or {}, str(path))

    def dump(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

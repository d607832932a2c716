"""Experiment grids: the product of tasks x models x CNN encoders x Swin depths x weights sources.

A grid file::

    name: cpu-quick
    tasks: [super-1, ebc-1]
    models:                          # each model with the settings it takes
      cs_unet: {encoders: [resnet18], depths: [intermediate]}
      unet_plusplus: {encoders: [resnet18]}
      hiformer: {variants: [s]}
    weights:                         # pretraining sources: Swin and CNN weights (null = from scratch)
      - {name: scratch, swin: null, cnn: null}
      - {name: imagenet, swin: swin_t.imagenet, cnn: imagenet}
      - {name: microscopy, swin: "weights/microlite-{depths}.safetensors", cnn: micronet}
    recipe: {tile_size: 256, max_minutes: 3, crops_per_epoch: 48}   # TrainConfig fields for every run

Each run gets an id derived from its resolved configuration, so a rerun finds finished runs, and ``--shard K/N``
splits the list into N disjoint parts that together are the whole grid.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

from csunet.errors import MissingInputError, SettingsError
from csunet.train.config import TrainConfig
from csunet.train.recipes import RECIPES
from csunet.utils import read_yaml

MODEL_AXES = {"encoders": "encoder", "depths": "depths", "variants": "variant", "levels": "levels"}
CNN_MODELS = ("unet", "unet_plusplus")
TRANSFORMER_MODELS = ("swin_unet", "hiformer", "transdeeplab")
WITHOUT_CNN = ("swin_unet", "transdeeplab")


@dataclass(frozen=True)
class GridRun:
    id: str
    config: TrainConfig
    weights_name: str

    def labels(self) -> dict:
        settings = self.config.model_settings
        return {
            "task": self.config.data,
            "model": self.config.model,
            "encoder": settings.get("encoder"),
            "depths": settings.get("depths"),
            "variant": settings.get("variant") or settings.get("levels"),
            "weights": self.weights_name,
        }


SETTINGS_OF_FIRST_GRIDS = ("lr", "tile_size", "loss", "class_weights")
"""The paper recipe's settings that configurations held before recipes existed."""
ADDED_SINCE_FIRST_GRIDS = {
    "test_fraction": 0.2,
    "recipe": "paper",
    "init_weights": None,
    "pseudo_labels": False,
    **{k: v for k, v in RECIPES["paper"].items() if k not in SETTINGS_OF_FIRST_GRIDS},
}
"""Settings added after grids were first run: at their paper values they leave run ids as they were, so existing
results databases stay valid."""


def run_id(config: TrainConfig) -> str:
    """12 hex digits of the SHA-256 of the configuration, minus what does not change the result: where the data
    lives and where results go (so machines with different paths agree on ids), how many devices run it,
    whether it is compiled, and whether it decides a clean-up (the grid keeps scores of the model's own outputs)."""
    data = config.to_dict()
    for key in (
        "data_root",
        "out",
        "name",
        "devices",
        "num_nodes",
        "strategy",
        "accelerator",
        "workers",
        "compile",
        "decide_cleanup",
    ):
        data.pop(key, None)
    if data.get("class_weights") == "none":  # the first grids held no weighting as null
        data["class_weights"] = None
    for key, default in ADDED_SINCE_FIRST_GRIDS.items():
        if data.get(key) == default:
            data.pop(key)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def load_grid(path: str | Path) -> dict:
    if not Path(path).is_file():
        raise MissingInputError(f"{path}: no such grid file")
    grid = read_yaml(path, SettingsError) or {}
    if not isinstance(grid, dict):
        raise SettingsError(f"{path}: a grid is a mapping with tasks, models, weights and recipe")
    missing = [key for key in ("tasks", "models") if not grid.get(key)]
    if missing:
        raise SettingsError(f"{path}: grid needs {', '.join(missing)}")
    problem = TrainConfig.unknown_settings(grid.get("recipe") or {})
    if problem:
        raise SettingsError(f"{path}: recipe: {problem}")
    grid.setdefault("name", Path(path).stem)
    grid.setdefault("weights", [{"name": "scratch", "swin": None, "cnn": None}])
    # grids rerun the paper's experiments: its recipe unless the grid names another
    grid["recipe"] = {"recipe": "paper", **(grid.get("recipe") or {})}
    return grid


def expand_grid(grid: dict, data_root: str | None = None) -> list[GridRun]:
    """Every run of the grid in a fixed order (the order sharding and reruns rely on)."""
    runs, seen = [], set()
    for task, (model, axes), weights in itertools.product(grid["tasks"], grid["models"].items(), grid["weights"]):
        axes = axes or {}
        unknown = sorted(set(axes) - set(MODEL_AXES))
        if unknown:
            raise SettingsError(f"model {model}: unknown grid axes {unknown}; use {sorted(MODEL_AXES)}")
        names = [MODEL_AXES[a] for a in axes]
        for values in itertools.product(*(axes[a] for a in axes)):
            settings = dict(zip(names, values))
            cnn = weights.get("cnn") if model not in WITHOUT_CNN else None
            swin = weights.get("swin") if model not in CNN_MODELS else None
            if swin and "{depths}" in swin:  # per-depth microscopy checkpoints
                swin = swin.format(depths=settings.get("depths", "intermediate"))
            config = TrainConfig(
                **{**grid["recipe"], "data": task, "data_root": data_root, "model": model,
                   "model_settings": {**grid["recipe"].get("model_settings", {}), **settings},
                   "swin_weights": swin, "cnn_weights": cnn}
            )  # fmt: skip
            run = GridRun(run_id(config), config, weights.get("name", "unnamed"))
            if run.id not in seen:  # e.g. a CNN model under two sources that differ only in Swin weights
                seen.add(run.id)
                runs.append(run)
    return runs

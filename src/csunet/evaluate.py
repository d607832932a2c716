"""`csunet evaluate`: load a checkpoint with an engine and score it on a split (:mod:`csunet.scoring`); and the
choice of the clean-up on the validation split at the end of training."""

from __future__ import annotations

import os

from csunet.checkpoint import update_meta
from csunet.cleanup import choose_rules, overridden, rules_from_meta
from csunet.export import load_engine
from csunet.inference import DEFAULT_TTA, default_device
from csunet.scoring import checkpoint_dataset, evaluate_model, measure_settings
from csunet.utils import keep_freed_memory, writable_folder


def evaluate(
    checkpoint: str | os.PathLike,
    data: str | None = None,
    split: str = "test",
    data_root: str | os.PathLike | None = None,
    overlap: float = 0.5,
    tta: str = DEFAULT_TTA,
    batch_size: int = 4,
    figures: str | os.PathLike | None = None,
    device: str | None = None,
    progress: bool = True,
    engine: str = "torch",
    cleanup: list[str] | None = None,
) -> dict:
    """Load ``checkpoint`` and evaluate it on ``split`` of ``data`` (default: the data it was trained on), run by
    ``engine`` (:func:`csunet.export.load_engine`; default the checkpoint in PyTorch, fp32 even on a GPU, as
    trained); the masks are cleaned as the checkpoint says, changed by ``cleanup``
    (:func:`csunet.cleanup.overridden`)."""
    cleanup = cleanup or []
    if figures is not None:
        writable_folder(figures, "error panels")
    keep_freed_memory()
    loaded = load_engine(checkpoint, engine, device or default_device(), bf16=False)
    dataset = checkpoint_dataset(loaded, checkpoint, data, split, data_root)
    rules = overridden(rules_from_meta(loaded.meta), cleanup)
    result = evaluate_model(loaded, dataset, overlap, tta, batch_size, figures, progress, rules)
    result.update({"checkpoint": str(checkpoint), "data": dataset.description.name, "split": split,
                   "engine": loaded.engine})  # fmt: skip
    return result


def choose_cleanup(
    checkpoint: str | os.PathLike,
    data: str | None = None,
    split: str = "val",
    data_root: str | os.PathLike | None = None,
    overlap: float = 0.5,
    progress: bool = True,
    tta: str = DEFAULT_TTA,
) -> dict:
    """Derive the clean-up limits from the training masks, keep the rules that bring ``split``'s measurements
    closer to the truth without lowering its mask IoU (:func:`csunet.cleanup.choose_rules`), and record them in
    ``checkpoint``. Returns the evaluation of ``split`` as predicted, with the rules under ``cleanup_rules``."""
    loaded = load_engine(checkpoint, "torch", "cpu", bf16=False)
    dataset = checkpoint_dataset(loaded, checkpoint, data, split, data_root)
    train_masks = checkpoint_dataset(loaded, checkpoint, data, "train", data_root)
    result = evaluate_model(loaded, dataset, overlap, tta, progress=progress, keep_masks=True)
    masks = result.pop("masks")
    rules = choose_rules([train_masks.load(i)[1] for i in range(len(train_masks))], masks["truth"],
                         masks["predicted"], measure_settings(loaded.meta), masks["logits"])  # fmt: skip
    update_meta(checkpoint, cleanup=rules.to_dict())
    result["cleanup_rules"] = rules
    return result

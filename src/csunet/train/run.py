"""``train``: one call from a configuration to a complete run folder.

Run folder::

    config.yaml          the resolved configuration (``--resume`` reads it back)
    environment.json     what `csunet doctor` reports, for the record
    weights_report.json  what pretrained weights loaded, were resized, stayed fresh (when any were asked for)
    metrics.csv          one row per epoch; loss.png and iou.png plot it
    checkpoints/         best.ckpt (highest validation IoU) and last.ckpt, written atomically
    test_metrics.json    the best checkpoint on the test split (when the data has one); figures/ its error panels
    summary.json         what happened: epochs, stages, wall time, best validation IoU, test IoU
    holdout.json         for data given as one folder pair: the images of each split drawn from it
    tensorboard/         when TensorBoard is installed
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from csunet.checkpoint import (
    META_KEY,
    CheckpointError,
    CheckpointMeta,
    Normalisation,
    model_state,
    read_checkpoint,
)
from csunet.data import DataError, DatasetDescription, load_description
from csunet.data.holdout import held_out_names, hold_out
from csunet.data.masks import SPARSE_BELOW
from csunet.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from csunet.errors import RunExistsError, SettingsError
from csunet.evaluate import choose_cleanup, evaluate
from csunet.models.registry import model_entry, resolved_settings
from csunet.runs import (
    BEST,
    LAST,
    SUMMARY_FILE,
    AtomicCheckpointIO,
    RunFolder,
    best_and_last_checkpoints,
    checkpoint_path,
    record_start,
    refuse_existing_run,
    require_run,
    timestamped_name,
    write_json,
)
from csunet.train.config import TrainConfig
from csunet.train.datamodule import SegmentationDataModule
from csunet.train.history import EpochHistory
from csunet.train.losses import class_frequencies, derived_class_weights, rare_classes
from csunet.train.module import SegmentationModule
from csunet.train.plan import plan, validation_steps
from csunet.train.recipes import ACTIVATIONS, RARE_SHARE
from csunet.train.sampling import NeverPredictedFeedback
from csunet.train.schedule import EpochBudget, TwoStageSchedule
from csunet.utils import keep_freed_memory, removed_if_left_empty, writable_folder

log = logging.getLogger(__name__)
"""What training decided and why; the command line shows it (csunet.cli.common.shown_log), a script configures
logging to see it."""

RUN_DIR_ENV = "CSUNET_RUN_DIR"
"""The run folder, handed to the processes a multi-device launch starts, so that all of them write to one."""


class _DropAdvertisement(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """While training: no advertisement in Lightning's log, no deprecation notice about torch internals it uses.
    Installed for the call, not on import: importing csunet changes no global logging or warning state."""
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    advertisement = _DropAdvertisement()
    logger.addFilter(advertisement)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated")
            yield
    finally:
        logger.removeFilter(advertisement)


class NeverPredictedWarning(UserWarning):
    """A class present in the validation masks was never predicted."""


def default_run_name(config: TrainConfig) -> str:
    encoder = resolved_settings(config.model, config.model_settings).get("encoder")
    return timestamped_name(Path(config.data).stem, config.model, *([encoder] if encoder else []))


def output_channels(num_classes: int, loss: str) -> int:
    """NASA's binary models have one sigmoid channel (the foreground), so NASA's IoU is the foreground IoU;
    softmax losses need a channel per class."""
    return 1 if num_classes == 2 and ACTIVATIONS[loss] == "sigmoid" else num_classes


def model_meta(config: TrainConfig, description) -> CheckpointMeta:
    """What the checkpoint needs to rebuild and use the model on its own."""
    settings = resolved_settings(config.model, config.model_settings)
    if model_entry(config.model).fixed_input_size:  # built for one input size: the tile size
        settings["img_size"] = config.tile_size
    return CheckpointMeta(
        model=config.model,
        model_settings=settings,
        classes=list(description.classes),
        out_channels=output_channels(len(description.classes), config.loss),
        colours=[list(c) for c in description.class_colours],
        channels=3,
        normalisation=Normalisation(tuple(IMAGENET_MEAN), tuple(IMAGENET_STD), config.intensity),
        tile_size=config.tile_size,
        scale=config.scale,
        activation=ACTIVATIONS[config.loss],
        augment=config.resolved_preset(description.name),
        pixel_size_um=description.pixel_size_um,
        background=description.background,
        recipe=config.to_dict(),
    )


def resolve_class_weights(config: TrainConfig, datamodule: SegmentationDataModule, num_classes: int):
    """The loss's class weights as ``config.class_weights`` says (:func:`derived_class_weights`), printed when
    derived from the training masks."""
    if isinstance(config.class_weights, list):
        weights = [float(w) for w in config.class_weights]
        if len(weights) != num_classes:
            raise SettingsError(f"{len(weights)} class weights given for {num_classes} classes")
        return weights
    if config.class_weights == "none":
        return None
    frequencies = class_frequencies(datamodule.train_masks(), num_classes)
    temperature = config.class_temperature or 1.0
    weights = derived_class_weights(config.class_weights, frequencies, temperature)
    if weights is not None and rank_zero_only.rank == 0:
        names = datamodule.description.classes
        shown = ", ".join(f"{name} {w:.2f}" for name, w in zip(names, weights))
        rare = [names[c] for c in rare_classes(frequencies)]
        why = f"; {', '.join(rare)} under {RARE_SHARE:.0%} of the training pixels" if rare else ""
        log.info(f"derived from the data: class weights {shown} (inverse frequency ** {temperature:g}{why})")
    return weights


def _warn_never_predicted(module: SegmentationModule) -> list[str]:
    confusion = module.last_val_confusion
    if confusion is None:
        return []
    missing = [
        name for i, name in enumerate(module.classes) if confusion[i].sum() > 0 and confusion[:, i].sum() == 0
    ]
    if missing:
        warnings.warn(
            f"the model never predicted {', '.join(missing)} on the validation images although they occur there "
            "(with class-centred crops, each such validation gave it more of them); train longer (--max-steps, "
            "--max-minutes), favour rare classes more (--class-temperature 1), or label more of it",
            NeverPredictedWarning,
            stacklevel=3,
        )
    return missing


def _agreed_run_dir(config: TrainConfig, run_dir: str | Path | None) -> Path:
    """The run folder, the same in every process: DDP workers that Lightning starts inherit rank 0's choice
    through the environment (a time-stamped default name would otherwise differ between them)."""
    if run_dir is None and config.name is None and rank_zero_only.rank != 0:
        if RUN_DIR_ENV not in os.environ:
            raise SettingsError(
                "runs over several machines need a --name, so that every process writes one folder"
            )
        return Path(os.environ[RUN_DIR_ENV])
    run_dir = Path(run_dir) if run_dir else Path(config.out) / (config.name or default_run_name(config))
    os.environ[RUN_DIR_ENV] = str(run_dir)
    return run_dir


def load_initial_weights(module: SegmentationModule, path: str | Path) -> None:
    """``module``'s model takes the weights of the csunet checkpoint at ``path``; a checkpoint of another model,
    settings, tile size or class list is refused, naming what differs."""
    checkpoint = read_checkpoint(path)
    theirs, ours = checkpoint[META_KEY], module.meta.to_dict()
    differ = [key for key in ("model", "model_settings", "tile_size", "classes", "out_channels")
              if theirs.get(key) != ours.get(key)]  # fmt: skip
    if differ:
        details = "; ".join(f"{key}: {theirs.get(key)!r} there, {ours.get(key)!r} here" for key in differ)
        raise SettingsError(f"--init-weights {path}: a different model from the one configured ({details})")
    module.model.load_state_dict(model_state(checkpoint))


def train(
    config: TrainConfig,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    callbacks: list[L.Callback] | None = None,
) -> dict:
    """Train as ``config`` says, into ``run_dir`` (default ``config.out/<name>``); return the run summary.

    With ``resume`` the run continues from ``checkpoints/last.ckpt`` of ``run_dir`` (or starts over if the
    interrupted run never finished an epoch). ``callbacks`` join Lightning's (progress shown elsewhere, a cancel
    button: a callback that sets ``trainer.should_stop``).
    """
    started = time.monotonic()
    keep_freed_memory()
    run_dir = _agreed_run_dir(config, run_dir)
    if config.pseudo_labels and not resume:  # two runs of this function (a resumed run is one of them)
        from csunet.train.self_training import train_in_two_rounds

        refuse_existing_run(run_dir)
        return train_in_two_rounds(config, run_dir, progress, callbacks)
    with removed_if_left_empty(run_dir), _quiet_lightning():
        if rank_zero_only.rank == 0 and not resume:
            refuse_existing_run(run_dir)
            writable_folder(run_dir, "run folder")
        return _train(config, run_dir, resume, progress, callbacks, started)


def _train(
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    progress: bool,
    callbacks: list[L.Callback] | None,
    started: float,
) -> dict:
    last = checkpoint_path(run_dir, LAST)
    description = hold_out(
        load_description(config.data, config.data_root), config.val_fraction, config.test_fraction, config.seed
    )
    recipe_was_default = config.recipe_was_default
    config, reasons = plan(config, description)
    if rank_zero_only.rank == 0 and recipe_was_default:
        log.info(
            f"recipe {config.recipe}: the default, made for small compute; the paper's recipe, to reproduce its "
            "numbers (hours on a CPU): --recipe paper"
        )
    if rank_zero_only.rank == 0:
        for reason in reasons:
            log.info(f"derived from the data: {reason}")
    L.seed_everything(config.seed, workers=True, verbose=False)
    datamodule = SegmentationDataModule(
        description,
        config.tile_size,
        config.resolved_preset(description.name),
        config.batch_size,
        config.crops_per_epoch,
        config.val_split,
        config.workers,
        config.class_crops,
        config.class_temperature,
        config.intensity,
        config.photometric,
        config.val_tiles or 0,
        config.val_overlap,
        config.scale,
    )
    datamodule.setup()
    shares = datamodule.crop_sampler.shares
    if rank_zero_only.rank == 0 and shares is not None and len(shares.names) > 1:
        log.info(f"derived from the data: class-centred crops {shares.describe()}")
    train_share, val_share = datamodule.labelled_shares()
    if rank_zero_only.rank == 0 and min(train_share, val_share) < 1:
        log.info(
            f"sparse labels: {train_share:.1%} of the training pixels are labelled, crops centre on them; "
            f"validation scores only the labelled {val_share:.1%} of its pixels"
        )
    meta = model_meta(config, description)
    class_weights = resolve_class_weights(config, datamodule, len(description.classes))
    module = SegmentationModule(config.to_dict(), meta, class_weights)
    resuming_from = last if resume and last.exists() else None

    if config.schedule == "two-stage":
        schedule = [TwoStageSchedule(config.patience, config.fine_tune_lr)]
        max_time = config.max_minutes
    else:  # whole epochs within the budget, and a hard stop well past it
        schedule = []
        if config.max_minutes is not None:
            validation = validation_steps(config, description, meta.tile_size, meta.scale)
            schedule.append(EpochBudget(config.max_minutes, validation))
        max_time = None if config.max_minutes is None else 1.5 * config.max_minutes
    trainer = _trainer(
        config,
        max_epochs=config.max_epochs,
        max_steps=config.max_steps or -1,
        gradient_clip_val=config.grad_clip or None,
        max_time={"minutes": max_time} if max_time is not None else None,
        deterministic=config.deterministic,
        callbacks=[
            EpochHistory(run_dir),
            NeverPredictedFeedback(),
            *schedule,
            *best_and_last_checkpoints(run_dir, "val_iou", on_train_epoch_end=True),
            *(callbacks or []),
        ],
        logger=_tensorboard(run_dir),
        plugins=[AtomicCheckpointIO()],
        default_root_dir=run_dir,
        num_sanity_val_steps=0,
        enable_progress_bar=progress,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    if trainer.is_global_zero:
        record_start(run_dir, config.dump())
        if held_out_names(description):
            write_json(RunFolder(run_dir).holdout, held_out_names(description))
    if resuming_from is None and config.init_weights:
        load_initial_weights(module, config.init_weights)
    elif resuming_from is None and (config.swin_weights or config.cnn_weights):
        from csunet.weights import load_pretrained

        reports = load_pretrained(
            module.model, swin=config.swin_weights, cnn=config.cnn_weights, progress=progress
        )
        if trainer.is_global_zero:
            write_json(RunFolder(run_dir).weights_report, {"reports": [r.to_dict() for r in reports]})
            for report in reports:
                log.info(str(report))
    trainer.fit(module, datamodule=datamodule, ckpt_path=resuming_from, weights_only=True)
    if not trainer.is_global_zero:
        return {}
    return _finish(trainer, module, config, description, run_dir, started, progress)


def _tensorboard(run_dir: Path):
    try:
        from lightning.pytorch.loggers import TensorBoardLogger

        return TensorBoardLogger(run_dir, name="tensorboard", version="")
    except ModuleNotFoundError:
        return False


def _trainer(config: TrainConfig, **settings) -> L.Trainer:
    """Lightning's trainer on the hardware the configuration names; hardware it cannot use (a GPU where there is
    none, a device count it rejects) is refused by name, before anything is written."""
    hardware = {"accelerator": config.accelerator, "devices": config.devices, "num_nodes": config.num_nodes,
                "strategy": config.strategy, "precision": config.precision}  # fmt: skip
    devices = str(config.devices)
    try:
        return L.Trainer(
            **hardware | {"devices": int(devices) if devices.lstrip("-").isdigit() else devices}, **settings
        )
    except (MisconfigurationException, ValueError, TypeError, ImportError, RuntimeError) as exc:
        given = " ".join(f"--{key.replace('_', '-')} {value}" for key, value in hardware.items())
        raise SettingsError(f"{given}: not usable on this machine: {exc}") from None


def _finish(
    trainer: L.Trainer,
    module: SegmentationModule,
    config: TrainConfig,
    description: DatasetDescription,
    run_dir: Path,
    started: float,
    progress: bool,
) -> dict:
    best = checkpoint_path(run_dir, BEST)
    best_score = next(c.best_model_score for c in trainer.checkpoint_callbacks if c.monitor == "val_iou")
    summary = {
        "run_dir": str(run_dir),
        "best_checkpoint": str(best) if best.exists() else None,
        "best_val_iou": float(best_score) if best_score is not None else float("-inf"),
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "recipe": config.recipe,
    }
    schedule = next((c for c in trainer.callbacks if isinstance(c, TwoStageSchedule)), None)
    if schedule is not None:
        summary.update(
            stage=schedule.stage,
            fine_tuning_from_epoch=schedule.switched_at_epoch,
            fine_tuning_reloaded_best=schedule.reloaded_best,
            stopped_by="patience"
            if schedule.stage == 2 and schedule.wait >= config.patience
            else "epoch or time cap",
        )
    else:
        budget = config.max_steps and trainer.global_step >= config.max_steps
        summary["stopped_by"] = "step budget" if budget else "epoch or time cap"
    sampler = getattr(trainer.datamodule, "crop_sampler", None)
    shares = None if sampler is None else sampler.shares
    if shares is not None:
        summary["class_centred_crops"] = {
            "shares": dict(zip(shares.names, (round(s, 4) for s in shares.shares))),
            "boosted_after_never_predicted": shares.boosted,
        }
    summary |= {
        "wall_seconds_this_session": round(time.monotonic() - started, 1),
        "never_predicted_on_validation": _warn_never_predicted(module),
    }
    full = None
    sparse = min(trainer.datamodule.labelled_shares()) < SPARSE_BELOW
    if sparse and config.decide_cleanup:
        log.info(
            "clean-up not decided: it compares the sizes and counts of whole regions, which strokes do not show"
        )
        summary["cleanup"] = {"kept": "none", "why": "sparse masks"}
    if (
        best.exists() and config.decide_cleanup and not sparse
    ):  # the whole validation split once more: the clean-up is decided on it
        full = choose_cleanup(best, config.data, config.val_split, config.data_root, overlap=config.val_overlap,
                              tta=config.tta, progress=progress)  # fmt: skip
        rules = full["cleanup_rules"]
        log.info(f"clean-up decided on {config.val_split} (limits from the training masks): {rules.describe()}")
        for line in rules.decisions:
            log.info(f"  {line}")
        summary["cleanup"] = {"kept": rules.describe(), "logit_offsets": rules.offsets, "limits_px": rules.limits,
                              "decisions": rules.decisions}  # fmt: skip
    elif config.val_tiles and best.exists():  # validation ran on windows: the whole split once now
        full = evaluate(best, config.data, config.val_split, config.data_root, overlap=config.val_overlap,
                        tta=config.tta, progress=progress)  # fmt: skip
    if full is not None:
        summary["full_validation"] = {k: full[k] for k in ("nasa_iou", "miou_without_background", "per_class_iou")}
    if "test" in description.splits and best.exists():
        try:
            test = evaluate(best, config.data, "test", config.data_root, overlap=config.val_overlap, tta=config.tta,
                            figures=RunFolder(run_dir).figures, progress=progress)  # fmt: skip
        except DataError as exc:
            test = {"error": str(exc)}
            summary["test_error"] = str(exc)
        write_json(RunFolder(run_dir).test_metrics, test)
        summary["test"] = {
            k: test[k] for k in ("nasa_iou", "miou_without_background", "per_class_iou") if k in test
        }
    write_json(RunFolder(run_dir).summary, summary)
    return summary


def resume(run_dir: str | Path, progress: bool = True) -> dict:
    """Continue the interrupted run in ``run_dir`` with the configuration it was started with. Resuming only ever
    adds: a finished run (it has a summary) is refused, and so is a damaged ``last.ckpt``, before anything is
    written."""
    run_dir = Path(run_dir)
    config = TrainConfig.load(require_run(run_dir))
    best = checkpoint_path(run_dir, BEST)
    if (run_dir / SUMMARY_FILE).is_file():
        raise RunExistsError(
            f"{run_dir}: this run finished ({SUMMARY_FILE} is there); resuming would retrain or rewrite it. Start "
            f"another run with a new --name, from its weights with --init-weights {best} to train on"
        )
    last = checkpoint_path(run_dir, LAST)
    if last.exists():
        try:
            read_checkpoint(last)
        except CheckpointError as exc:
            raise CheckpointError(
                f"{exc}; nothing was changed. The run cannot continue from it: start another run with a new "
                f"--name{f', from --init-weights {best}' if best.exists() else ''}"
            ) from None
    return train(config, run_dir, resume=True, progress=progress)


def resume_conflicts(run_dir: str | Path, given: dict) -> list[str]:
    """The settings in ``given`` (name -> value) that differ from the run's own configuration, as
    ``name value (the run's: other)``: a resumed run trains exactly what it was started with."""
    config = TrainConfig.load(require_run(Path(run_dir))).to_dict()
    theirs = {**config, **{f"model setting {k}": v for k, v in config["model_settings"].items()}}
    ours = {k: v for k, v in given.items() if k != "model_settings"}
    ours |= {f"model setting {k}": v for k, v in given.get("model_settings", {}).items()}
    return [f"{name} {value!r} (the run's: {theirs.get(name)!r})" for name, value in ours.items()
            if value != theirs.get(name)]  # fmt: skip

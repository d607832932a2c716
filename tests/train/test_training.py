"""Training end to end on the bundled sample with a tiny real model: run folder, schedule, divergence, warnings."""

import csv
import json
import logging
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from csunet.checkpoint import load_checkpoint
from csunet.errors import SettingsError
from csunet.evaluate import evaluate
from csunet.train import TrainConfig, TrainingDiverged, train
from csunet.train.run import NeverPredictedWarning, _warn_never_predicted
from csunet.train.schedule import TwoStageSchedule
from tests.conftest import tiny_config


def read_rows(run_dir) -> list[dict]:
    with open(Path(run_dir) / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def test_a_run_folder_holds_everything(tiny_run):
    run = Path(tiny_run["run_dir"])
    for name in ("config.yaml", "environment.json", "metrics.csv", "loss.png", "iou.png", "summary.json",
                 "test_metrics.json", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):  # fmt: skip
        assert (run / name).is_file(), name
    rows = read_rows(run)
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert all(0 <= float(r["val_iou"]) <= 1 and float(r["train_loss"]) > 0 for r in rows)
    assert float(rows[0]["lr"]) == pytest.approx(2e-4)
    test = json.loads((run / "test_metrics.json").read_text())
    assert test["images"] == 4 and set(test["per_class_iou"]) == {"matrix", "secondary", "tertiary"}
    panels = sorted(path.name for path in (run / "figures").iterdir())  # the test images' error panels
    assert panels == sorted(f"{Path(image['image']).stem}_panel.png" for image in test["per_image"])
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_checkpoint_is_self_contained_and_evaluates_as_recorded(tiny_run):
    loaded = load_checkpoint(tiny_run["best_checkpoint"])
    meta = loaded.meta
    assert meta.model == "swin_unet" and meta.tile_size == 64
    assert meta.classes == ["matrix", "secondary", "tertiary"] and len(meta.colours) == 3
    assert meta.normalisation.mean == pytest.approx([0.485, 0.456, 0.406])
    assert meta.recipe["lr"] == pytest.approx(2e-4) and meta.recipe["loss"] == "bce-dice"
    recorded = json.loads((Path(tiny_run["run_dir"]) / "test_metrics.json").read_text())
    # the paper's recipe evaluates with one pass per tile, as the paper did; so does evaluate when told to
    assert meta.recipe["tta"] == recorded["tta"] == "none"
    again = evaluate(tiny_run["best_checkpoint"], overlap=0.25, tta="none", progress=False)
    assert again["nasa_iou"] == pytest.approx(recorded["nasa_iou"], abs=1e-6)
    assert again["nasa_iou"] == pytest.approx(sum(r["nasa_iou"] for r in again["per_image"]) / 4)


def test_two_stage_schedule_switches_and_reloads_the_best_weights(tmp_path):
    model = nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    best_path = tmp_path / "best.ckpt"
    best_weights = {f"net.{k}": v.clone() for k, v in model.state_dict().items()}
    torch.save({"state_dict": best_weights}, best_path)
    module = SimpleNamespace(device="cpu", net=model)
    module.load_state_dict = lambda state: model.load_state_dict({k[4:]: v for k, v in state.items()})
    trainer = SimpleNamespace(
        callback_metrics={}, should_stop=False, optimizers=[optimizer], current_epoch=0,
        checkpoint_callbacks=[SimpleNamespace(monitor="val_iou", best_model_path=str(best_path))],
    )  # fmt: skip
    schedule = TwoStageSchedule(patience=2, fine_tune_lr=1e-5)
    for epoch, score in enumerate([0.5, 0.6, 0.55]):
        trainer.current_epoch, trainer.callback_metrics["val_iou"] = epoch, torch.tensor(score)
        with torch.no_grad():
            model.weight.add_(1.0)  # training moves the weights away from the best ones
        schedule.on_validation_end(trainer, module)
        schedule.on_train_epoch_end(trainer, module)
    assert schedule.stage == 1 and optimizer.param_groups[0]["lr"] == 2e-4 and optimizer.state
    trainer.current_epoch += 1
    schedule.on_train_epoch_end(trainer, module)  # an epoch cut short without validation does not count
    assert schedule.stage == 1
    trainer.callback_metrics["val_iou"] = torch.tensor(0.58)  # second round without improvement: switch
    schedule.on_validation_end(trainer, module)
    schedule.on_train_epoch_end(trainer, module)
    assert schedule.stage == 2 and schedule.wait == 0
    assert optimizer.param_groups[0]["lr"] == 1e-5 and not optimizer.state  # fresh Adam state
    assert torch.equal(model.weight, best_weights["net.weight"])
    for score in (0.4, 0.3):
        assert not trainer.should_stop
        trainer.current_epoch += 1
        trainer.callback_metrics["val_iou"] = torch.tensor(score)
        schedule.on_validation_end(trainer, module)
        schedule.on_train_epoch_end(trainer, module)
    assert trainer.should_stop


def test_schedule_in_a_real_run_lowers_the_rate_then_stops(tmp_path):
    # lr 0: validation IoU can never improve, so each stage lasts exactly `patience` rounds after the first
    summary = train(
        tiny_config(tmp_path, "sched", lr=0.0, fine_tune_lr=0.0, patience=1, max_epochs=10), progress=False
    )
    rows = read_rows(summary["run_dir"])
    assert len(rows) == 3  # epoch 0 sets the best, epoch 1 switches, epoch 2 stops
    assert summary["stage"] == 2 and summary["fine_tuning_from_epoch"] == 1
    assert summary["stopped_by"] == "patience"


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from csunet.train import module as module_file

    real_build = module_file.build_loss

    def build_poisoned(name, weights=None):
        loss, calls = real_build(name, weights), []

        def poisoned(logits, target):
            calls.append(1)
            value = loss(logits, target)
            return value * float("nan") if len(calls) > 6 else value  # 2 training + 4 validation calls, then NaN

        return poisoned

    monkeypatch.setattr(module_file, "build_loss", build_poisoned)
    config = tiny_config(tmp_path, "nan", max_epochs=3, val_overlap=0.0)
    with pytest.raises(TrainingDiverged, match="loss became nan at epoch 1, step 2;"):
        train(config, progress=False)
    last = load_checkpoint(tmp_path / "nan" / "checkpoints" / "last.ckpt")
    assert all(torch.isfinite(p).all() for p in last.model.parameters())
    assert [int(r["epoch"]) for r in read_rows(tmp_path / "nan")] == [0]


def test_a_class_never_predicted_on_validation_is_named():
    module = SimpleNamespace(classes=["matrix", "secondary", "tertiary"])
    module.last_val_confusion = torch.tensor([[5, 1, 0], [1, 4, 0], [2, 1, 0]])  # tertiary occurs, never predicted
    with pytest.warns(NeverPredictedWarning, match="never predicted tertiary"):
        assert _warn_never_predicted(module) == ["tertiary"]


def test_an_existing_run_is_never_overwritten(tiny_run):
    run = Path(tiny_run["run_dir"])
    with pytest.raises(FileExistsError, match="--resume"):
        train(tiny_config(run.parent, run.name), progress=False)


def test_compiled_training_keeps_plain_checkpoint_keys(tmp_path):
    from csunet.data import sample_description
    from csunet.train import SegmentationModule
    from csunet.train.run import model_meta

    config = tiny_config(tmp_path, "compiled", compile=True)
    compiled = SegmentationModule(config.to_dict(), model_meta(config, sample_description()))
    plain = SegmentationModule(tiny_config(tmp_path, "plain").to_dict(), model_meta(config, sample_description()))
    assert compiled._compiled_forward is not None and plain._compiled_forward is None
    assert list(compiled.state_dict()) == list(plain.state_dict())  # no _orig_mod. or duplicated keys


def test_init_weights_start_from_a_checkpoint_and_refuse_another_model(tiny_run, tmp_path):
    """Fine-tuning starts from the checkpoint's weights (seen by a callback before the first step); a checkpoint of
    another model is refused, naming the difference."""
    from lightning.pytorch import Callback

    from csunet.checkpoint import read_checkpoint
    from csunet.errors import SettingsError

    saved = read_checkpoint(tiny_run["best_checkpoint"])["state_dict"]

    class FirstWeights(Callback):
        def on_train_start(self, trainer, pl_module):
            self.state = {f"model.{k}": v.clone() for k, v in pl_module.model.state_dict().items()}

    seen = FirstWeights()
    config = tiny_config(tmp_path, "tuned", init_weights=tiny_run["best_checkpoint"], max_epochs=1)
    train(config, progress=False, callbacks=[seen])
    assert seen.state.keys() == {k for k in saved if k.startswith("model.")}
    assert all(torch.equal(seen.state[k], saved[k]) for k in seen.state)

    other = tiny_config(tmp_path, "other", init_weights=tiny_run["best_checkpoint"],
                        model_settings={"window_size": 2, "embed_dim": 12})  # fmt: skip
    with pytest.raises(SettingsError, match=r"a different model from the one configured \(model_settings: "):
        train(other, progress=False)
    with pytest.raises(SettingsError, match="leave out --swin-weights"):
        tiny_config(tmp_path, "both", init_weights=tiny_run["best_checkpoint"], swin_weights="swin_t")


def test_init_weights_on_the_command_line_takes_the_model_from_the_checkpoint(tiny_run, tmp_path):
    """No model flags repeated: the checkpoint's model, settings and tile size are used (and said)."""
    from typer.testing import CliRunner

    from csunet.cli import app
    from csunet.train import TrainConfig

    result = CliRunner().invoke(app, ["train", "--task", "sample", "--recipe", "paper", "--init-weights",
                                      tiny_run["best_checkpoint"], "--max-epochs", "1", "--crops-per-epoch", "8",
                                      "--batch-size", "4", "--no-decide-cleanup", "--out", str(tmp_path), "--name",
                                      "on"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "from --init-weights" in result.output
    config = TrainConfig.load(tmp_path / "on" / "config.yaml")
    assert config.model == "swin_unet" and config.tile_size == 64
    assert config.model_settings["embed_dim"] == 24 and config.model_settings["window_size"] == 2


def test_training_on_scribbles_says_so_and_validates_on_the_strokes(tmp_path, caplog):
    """A sparse dataset trains (the fast recipe, class-centred crops), the console says what share is labelled, and
    the validation IoU it records is the one evaluation gives on the sparse validation masks (up to the sliding
    window that evaluation adds)."""
    from csunet.data.scribbles import write_scribble_dataset

    caplog.set_level(logging.INFO, logger="csunet")
    data = write_scribble_dataset("sample", tmp_path / "strokes", 0.03, seed=0)
    # one pass per tile on the test split: the flips are tested with the demo, not what this test is about
    summary = train(tiny_config(tmp_path, "strokes", data=str(data), recipe="fast", max_steps=6, max_epochs=100,
                                val_tiles=0, tta="none"), progress=False)  # fmt: skip
    said = caplog.text
    assert "sparse labels: 3.0% of the training pixels are labelled, crops centre on them" in said
    assert re.search(r"validation scores only the labelled [23]\.\d% of its pixels", said)
    # the sample's tertiary precipitates, grown from the strokes by the pixel classifier, are too thin to shrink
    assert load_checkpoint(summary["best_checkpoint"]).meta.scale == 1
    on_strokes = evaluate(summary["best_checkpoint"], split="val", tta="none", progress=False)
    assert on_strokes["nasa_iou"] == pytest.approx(summary["best_val_iou"], abs=0.02)
    # the copy is named after the sample (sample-scribbles-0.03), its file dataset.yaml: the sample's preset
    assert load_checkpoint(summary["best_checkpoint"]).meta.augment == "super"


def test_pseudo_labels_fill_only_unlabelled_pixels_where_the_model_is_sure():
    from csunet.data.masks import IGNORE_INDEX
    from csunet.train.self_training import fill_unlabelled

    mask = np.array([[0, IGNORE_INDEX, IGNORE_INDEX, 2]], dtype=np.uint8)
    predicted = np.array([[1, 1, 2, 0]], dtype=np.uint8)
    confidence = np.array([[0.99, 0.95, 0.5, 0.99]])
    assert fill_unlabelled(mask, predicted, confidence).tolist() == [[0, 1, IGNORE_INDEX, 2]]


def test_pseudo_labels_train_twice_in_the_budget_and_keep_the_strokes_for_validation(
    tmp_path, caplog, monkeypatch
):
    """Strokes -> a first round -> its predictions fill the training masks -> a second round from the first round's
    weights, the validation masks still the strokes; the steps shared out between the rounds. (Three steps make no
    model sure of anything: every prediction counts here; the confidence rule is the test above.)"""
    from csunet.data import SegmentationDataset
    from csunet.data.masks import IGNORE_INDEX
    from csunet.data.scribbles import write_scribble_dataset
    from csunet.train import self_training

    monkeypatch.setattr(self_training, "CONFIDENCE", 0.0)
    caplog.set_level(logging.INFO, logger="csunet")
    data = write_scribble_dataset("sample", tmp_path / "strokes", 0.03, seed=0)
    config = tiny_config(tmp_path, "self", data=str(data), recipe="fast", max_steps=6, max_epochs=100, val_tiles=0,
                         pseudo_labels=True, tta="none")  # fmt: skip
    summary = train(config, progress=False)
    pseudo = summary["pseudo_labels"]
    assert json.loads((Path(summary["run_dir"]) / "summary.json").read_text())["pseudo_labels"] == pseudo
    first = Path(pseudo["first_round"])
    assert first.name == "self-round1" and (first / "checkpoints" / "best.ckpt").is_file()
    assert pseudo["first_round_steps"] == 3 and summary["steps"] == 3
    second = TrainConfig.load(Path(summary["run_dir"]) / "config.yaml")
    assert second.init_weights == str(first / "checkpoints" / "best.ckpt") and not second.pseudo_labels
    assert second.augment == "super"  # the sample's preset, whatever the copied description is called
    filled = SegmentationDataset(second.data, "train", cache=False)
    strokes = SegmentationDataset(data, "train", cache=False)
    before = after = 0
    for index in range(len(strokes)):
        painted, full = strokes.load(index)[1], filled.load(index)[1]
        assert np.array_equal(full[painted != IGNORE_INDEX], painted[painted != IGNORE_INDEX])  # strokes kept
        before, after = before + int((painted != IGNORE_INDEX).sum()), after + int((full != IGNORE_INDEX).sum())
    assert before < 0.05 * after and after == sum(m.size for m in (filled.load(i)[1] for i in range(len(filled))))
    assert pseudo["labelled_after"] == 1.0 and pseudo["labelled_before"] == pytest.approx(0.03, abs=0.002)
    for index in range(len(SegmentationDataset(data, "val", cache=False))):  # validation: the painted strokes
        assert np.array_equal(SegmentationDataset(second.data, "val", cache=False).load(index)[1],
                              SegmentationDataset(data, "val", cache=False).load(index)[1])  # fmt: skip
    assert "pseudo-labels: 3.0% of the training pixels painted, 100.0% labelled after filling" in caplog.text
    assert not (first / "test_metrics.json").exists()  # the first round's time goes to training
    assert set(summary["test"]["per_class_iou"]) == {"matrix", "secondary", "tertiary"}


def test_pseudo_labels_on_complete_masks_are_refused_naming_the_setting(tmp_path):
    with pytest.raises(SettingsError, match="pseudo_labels fills unlabelled pixels, and 100% of the training"):
        train(tiny_config(tmp_path, "dense", recipe="fast", max_steps=2, pseudo_labels=True), progress=False)
    assert not (tmp_path / "dense").exists() and not (tmp_path / "dense-round1").exists()

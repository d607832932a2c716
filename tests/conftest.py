import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    # `make test` runs two workers: each gets its share of the cores, for its own torch and for the processes its
    # tests start (two workers of two threads each on two cores ran the suite slower than one worker did)
    THREADS = max(1, len(os.sched_getaffinity(0)) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ["OMP_NUM_THREADS"] = str(THREADS)
    torch.set_num_threads(THREADS)


def _benchmark_root() -> Path | None:
    for candidate in (os.environ.get("CSUNET_DATA"), REPO.parent / "shared" / "data" / "micronet_benchmark"):
        if candidate and Path(candidate, "Super1").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def benchmark_root() -> Path:
    """NASA's benchmark folder; tests that need it skip, saying why, when ../shared is absent."""
    root = _benchmark_root()
    if root is None:
        pytest.skip(
            "NASA benchmark data absent: neither $CSUNET_DATA nor ../shared/data/micronet_benchmark exists"
        )
    return root


TINY_MODEL = {"model": "swin_unet", "model_settings": {"window_size": 2, "embed_dim": 24}, "tile_size": 64}
"""A 1.7M-parameter Swin-Unet on 64-pixel tiles: real architecture, trains in seconds."""


def tiny_config(out: Path, name: str, **overrides):
    from csunet.train import TrainConfig

    settings = {**TINY_MODEL, "data": "sample", "recipe": "paper", "batch_size": 4, "crops_per_epoch": 8,
                "max_epochs": 2, "decide_cleanup": False}  # fmt: skip
    return TrainConfig(**{**settings, "out": str(out), "name": name, **overrides})


TINY_CLI = ["--task", "sample", "--recipe", "paper", "--model", "swin_unet", "--window", "2", "--embed-dim", "24", "--tile-size", "64",
            "--crops-per-epoch", "8", "--batch-size", "4", "--no-decide-cleanup"]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> dict:
    """One finished two-epoch training run on the bundled sample, shared by evaluation/prediction tests; the one
    tiny run that decides its clean-up (the others skip that extra validation pass)."""
    from csunet.train import train

    return train(tiny_config(tmp_path_factory.mktemp("runs"), "tiny", decide_cleanup=True), progress=False)


def assert_measured_masks_were_scored(run: Path) -> None:
    """The run folder's measured test masks are the masks its test split was scored on (same tiles, same clean-up):
    area fractions and particle counts of ``measurements/summary.json`` equal the predicted side of the
    measurement agreement in ``test_metrics.json`` (pooled and per-image area fractions agree: images of one size)."""
    import json

    measured = json.loads((run / "measurements" / "summary.json").read_text())["per_class"]
    scored = json.loads((run / "test_metrics.json").read_text())["measurement_agreement"]["per_class"]
    assert set(measured) == set(scored)
    for name, numbers in measured.items():
        assert numbers["area_fraction_mean"] == pytest.approx(scored[name]["area_fraction"]["predicted"], abs=1e-7)
        if numbers["kind"] == "particle":
            assert numbers["count"] == scored[name]["count"]["predicted"]


def pytest_collection_modifyitems(config, items):
    """The napari plugin's tests run last: they start a Qt application, whose event loop pytest-qt then runs
    around every later test."""
    items.sort(key=lambda item: "napari_plugin" in item.nodeid)

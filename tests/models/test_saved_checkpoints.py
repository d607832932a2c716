"""Checkpoints written before the models were rebuilt by composition still load and compute the same logits, and
every registry model keeps the state-dict key names and shapes it had (tests/fixtures/ says how they were made)."""

import json
from pathlib import Path

import pytest
import torch

from csunet.checkpoint import load_checkpoint
from csunet.models import create_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXPECTED = json.loads((FIXTURES / "pre_refactor_expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED["logits_every_4th_pixel"]))
def test_pre_refactor_checkpoint_gives_the_same_logits(name):
    loaded = load_checkpoint(FIXTURES / f"pre_refactor_{name}.ckpt")
    torch.manual_seed(EXPECTED["input_seed"])
    image = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        logits = loaded.model(image)[:, :, ::4, ::4]
    expected = torch.tensor(EXPECTED["logits_every_4th_pixel"][name])
    assert logits.shape == expected.shape
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(EXPECTED["keys"]))
def test_state_dict_keys_and_shapes_are_unchanged(name):
    entry = EXPECTED["keys"][name]
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in entry["settings"].items()}
    state = create_model(name, num_classes=3, **settings).state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == entry["shapes"]

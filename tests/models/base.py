"""Shared tests for every registry model (smp's tests/models/base.py pattern): subclasses set the settings."""

import pytest
import torch

from csunet.models import create_model


class ModelTestBase:
    name: str
    small: dict  # cheap settings for gradient/input tests (224 / window 7)
    shape_cases: list[dict]  # settings whose output shape is checked
    size_multiple = 32  # input sizes must be multiples of this (patch size x downsamplings)

    def build(self, **settings):
        torch.manual_seed(0)
        return create_model(self.name, **settings)

    def test_output_shapes(self):
        for settings in self.shape_cases:
            model = self.build(**settings).eval()
            size = settings.get("img_size", 224)
            with torch.no_grad():
                out = model(torch.rand(1, 3, size, size))
            assert out.shape == (1, settings.get("num_classes", 3), size, size), settings
            assert torch.isfinite(out).all()

    def test_every_parameter_gets_a_gradient(self):
        model = self.build(**self.small).train()
        out = model(torch.rand(2, 3, 224, 224))
        out.square().mean().backward()
        dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
        assert dead == []

    def test_grey_input_is_repeated(self):
        model = self.build(**self.small).eval()
        grey = torch.rand(1, 1, 224, 224)
        with torch.no_grad():
            assert torch.allclose(model(grey), model(grey.repeat(1, 3, 1, 1)))

    def test_wrong_input_size_is_explained(self):
        model = self.build(**self.small).eval()
        with pytest.raises(ValueError, match="takes 224x224 inputs, got 256x256"):
            model(torch.rand(1, 3, 256, 256))

    def test_grid_not_divisible_by_window_is_refused(self):
        with pytest.raises(ValueError, match="do not divide into 8x8 windows; use img_size"):
            self.build(**{**self.small, "img_size": 480, "window_size": 8})
        with pytest.raises(ValueError, match=f"must be a multiple of {self.size_multiple}"):
            self.build(**{**self.small, "img_size": 500})

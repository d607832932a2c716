"""Sliding-window inference: coverage, blend weights, seams, padding, test-time augmentation."""

import pytest
import torch
from torch import nn

from csunet.inference import gaussian_window, predict_tiles, sliding_window_logits, tile_starts
from csunet.metrics import predicted_classes
from csunet.models import create_model


class Ones(nn.Module):
    """Predicts 1 everywhere: blended output must be exactly 1 if the blend weights sum to one."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.ones(x.shape[0], 2, *x.shape[-2:])


class Identity(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x


def pointwise():
    torch.manual_seed(0)
    return nn.Conv2d(3, 3, kernel_size=1).eval()


@pytest.mark.parametrize("length", [64, 100, 256, 257, 1100, 1500])
def test_tiles_cover_the_axis_edge_to_edge(length):
    tile, overlap = 256, 0.5
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0
    assert starts[-1] + tile == max(length, tile)
    assert all(b - a <= tile * (1 - overlap) for a, b in zip(starts, starts[1:]))
    assert starts == sorted(set(starts))


def test_gaussian_window_peaks_in_the_centre_and_never_vanishes():
    window = gaussian_window(64)
    assert window.max().item() == pytest.approx(1.0, abs=0.02)
    assert window.min().item() >= 1e-3
    assert window[32, 32] > window[0, 0]


def test_blend_weights_sum_to_one_everywhere():
    out = sliding_window_logits(Ones(), torch.rand(3, 1100, 1500), tile=256, overlap=0.5, batch_size=3)
    assert out.shape == (2, 1100, 1500)
    assert torch.allclose(out, torch.ones_like(out), atol=1e-6)


def test_a_pointwise_model_shows_no_seams():
    model, image = pointwise(), torch.rand(3, 1100, 1500)
    with torch.no_grad():
        whole = model(image[None])[0]
    tiled = sliding_window_logits(model, image, tile=256, overlap=0.5, batch_size=4)
    assert torch.allclose(tiled, whole, atol=1e-5)


def test_an_image_of_repeated_tiles_gets_the_tile_mask_repeated():
    torch.manual_seed(0)
    model = create_model(
        "cs_unet", num_classes=3, encoder="resnet18", img_size=64, window_size=2, embed_dim=24
    ).eval()
    tile = torch.rand(3, 64, 64)
    with torch.no_grad():
        tile_mask = predicted_classes(model(tile[None]))[0]
    image = tile.repeat(1, 2, 3)
    mask = predicted_classes(sliding_window_logits(model, image, tile=64, overlap=0.0)[None])[0]
    assert mask.shape == (128, 192)
    assert torch.equal(mask, tile_mask.repeat(2, 3))


def test_images_smaller_than_a_tile_are_padded_and_cut_back():
    model, image = pointwise(), torch.rand(3, 40, 50)
    out = sliding_window_logits(model, image, tile=64)
    with torch.no_grad():
        assert torch.allclose(out, model(image[None])[0], atol=1e-5)


@pytest.mark.parametrize("mode", ["hflip", "flips", "d4"])
def test_test_time_augmentation_undoes_each_transform(mode):
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(predict_tiles(Identity(), x, mode), x)


def test_test_time_augmentation_averages_different_views():
    model = create_model("swin_unet", num_classes=2, img_size=64, window_size=2, embed_dim=24).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        plain, flipped = model(x), model(x.flip(-1)).flip(-1)
        averaged = predict_tiles(model, x, "hflip")
    assert not torch.allclose(plain, flipped)
    assert torch.allclose(averaged, (plain + flipped) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        predict_tiles(model, x, "rot45")


class FirstChannel(nn.Module):
    """Its logit is the input's first channel; it remembers the size of every tile it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))
        self.seen: list[tuple[int, int]] = []

    def forward(self, x):
        self.seen += [tuple(x.shape[-2:])] * x.shape[0]
        return x[:, :1]


def stub_meta(**settings):
    """What a checkpoint of the two-class stub model above carries."""
    from csunet.checkpoint import CheckpointMeta, Normalisation

    return CheckpointMeta(model="stub", model_settings={}, classes=["matrix", "particle"], out_channels=1,
                          colours=[[0, 0, 0], [255, 0, 0]], channels=3, normalisation=Normalisation((0,) * 3, (1,) * 3),
                          tile_size=64, activation="sigmoid", **settings)  # fmt: skip


def test_a_model_at_half_scale_sees_half_the_pixels_and_its_mask_is_the_images_size(tmp_path):
    from csunet.checkpoint import LoadedCheckpoint
    from csunet.predictor import Predictor

    meta = stub_meta(scale=0.5)
    model = FirstChannel()
    image = -torch.ones(3, 200, 300)
    image[:, 50:150, 100:220] = 1  # a particle 100 x 120 pixels
    prediction = Predictor(LoadedCheckpoint(model, meta, tmp_path / "stub.ckpt"), tta="none").predict_tensor(image)
    # the model ran over the image at 100 x 150: that grid of 64-pixel tiles, no more
    assert set(model.seen) == {(64, 64)}
    assert len(model.seen) == len(tile_starts(100, 64, 0.5)) * len(tile_starts(150, 64, 0.5))
    truth = (image[0] > 0).numpy()
    assert prediction.raw_mask.shape == (200, 300) and prediction.logits.shape == (1, 200, 300)
    assert (prediction.raw_mask.astype(bool) != truth).sum() <= 2 * (100 + 120)  # at most its outline
    assert prediction.raw_mask[60:140, 110:210].all() and not prediction.raw_mask[:45].any()


@pytest.mark.parametrize(("augment", "tta", "views", "ran"), [
    ("default", "auto", 4, "flips"), ("super", "auto", 4, "flips"), ("ebc", "auto", 1, "none"),
    ("ebc", "d4", 8, "d4"), ("super", "none", 1, "none"),
])  # fmt: skip
def test_auto_test_time_augmentation_follows_the_checkpoints_preset(tmp_path, augment, tta, views, ran):
    """``auto`` (the default) runs the four flips for presets trained with flips and quarter turns, none for EBC
    (benchmarks/results/tta.md); the flipped views come back unflipped, so the mask is the plain one."""
    from csunet.checkpoint import LoadedCheckpoint
    from csunet.predictor import Predictor

    meta = stub_meta(augment=augment)
    model = FirstChannel()
    image = -torch.ones(3, 64, 64)
    image[:, 10:30, 5:50] = 1
    predictor = Predictor(LoadedCheckpoint(model, meta, tmp_path / "stub.ckpt"), tta=tta)
    prediction = predictor.predict_tensor(image)
    assert predictor.tta_mode == ran and len(model.seen) == views
    assert (prediction.raw_mask.astype(bool) == (image[0] > 0).numpy()).all()


def test_an_unknown_test_time_augmentation_is_refused_by_name(tmp_path):
    from csunet.checkpoint import LoadedCheckpoint
    from csunet.errors import SettingsError
    from csunet.predictor import Predictor

    meta = stub_meta()
    with pytest.raises(SettingsError, match="unknown test-time augmentation 'rot45'; choose from auto, none"):
        Predictor(LoadedCheckpoint(FirstChannel(), meta, tmp_path / "stub.ckpt"), tta="rot45")

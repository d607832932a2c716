"""Loss and metrics against cases computed by hand."""

import math

import numpy as np
import pytest
import torch

from csunet.data import IGNORE_INDEX
from csunet.metrics import (
    confusion_matrix,
    mean_iou_without_background,
    nasa_iou,
    per_class_iou,
    predicted_classes,
)
from csunet.train.losses import (
    BCEDiceLoss,
    CrossEntropyLoss,
    FocalLoss,
    TverskyLoss,
    build_loss,
    class_frequencies,
    derived_class_weights,
    inverse_frequency_weights,
)
from csunet.train.recipes import ACTIVATIONS, LOSSES

BIG = 20.0  # logit whose sigmoid is 1 to float precision


def _logits_from_classes(classes: torch.Tensor, channels: int) -> torch.Tensor:
    """Confident logits predicting ``classes`` (one-hot, +BIG / -BIG)."""
    onehot = torch.nn.functional.one_hot(classes, channels).permute(0, 3, 1, 2).float()
    return onehot * 2 * BIG - BIG


def test_nasa_iou_pools_channels():
    # 2x2 image, 3 classes. truth: [[0, 1], [2, 0]]; prediction: [[0, 1], [1, 1]]
    truth = torch.tensor([[[0, 1], [2, 0]]])
    logits = _logits_from_classes(torch.tensor([[[0, 1], [1, 1]]]), 3)
    # channel 0: pred {0}, truth {0, 3} -> I 1, U 2; channel 1: pred {1, 2, 3}, truth {1} -> I 1, U 3;
    # channel 2: pred {}, truth {2} -> I 0, U 1; pooled 2 / 6
    assert nasa_iou(logits, truth).item() == pytest.approx(2 / 6)


def test_nasa_iou_binary_single_channel_is_foreground_iou():
    truth = torch.tensor([[[1, 1, 0, 0]]])
    logits = torch.tensor([[[[BIG, -BIG, BIG, -BIG]]]])  # predicts pixels 0 and 2
    assert nasa_iou(logits, truth).item() == pytest.approx(1 / 3)


def test_nasa_iou_ignores_unlabelled_pixels_and_averages_per_image():
    truth = torch.tensor([[[1, IGNORE_INDEX]], [[0, 1]]])
    logits = torch.tensor([[[[BIG, BIG]]], [[[BIG, BIG]]]])
    scores = nasa_iou(logits, truth)
    assert scores.tolist() == pytest.approx([1.0, 0.5])


def test_per_class_and_mean_iou():
    truth = torch.tensor([[[0, 1], [2, 0]]])
    predicted = predicted_classes(_logits_from_classes(torch.tensor([[[0, 1], [1, 1]]]), 3))
    confusion = confusion_matrix(predicted, truth, 3)
    assert confusion.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    iou = per_class_iou(confusion)
    assert iou.tolist() == pytest.approx([1 / 2, 1 / 3, 0.0])
    assert mean_iou_without_background(confusion) == pytest.approx((1 / 3 + 0) / 2)
    absent = per_class_iou(confusion_matrix(torch.tensor([0, 0]), torch.tensor([0, 0]), 3))
    assert math.isnan(absent[2])


def test_bce_dice_loss_by_hand():
    logits = torch.tensor([[[[0.0, 2.0]], [[1.0, -1.0]]]])  # (1, 2, 1, 2)
    truth = torch.tensor([[[0, 1]]])  # one-hot: ch0 [1, 0], ch1 [0, 1]
    p = torch.sigmoid(logits).flatten().tolist()  # ch0 px0, ch0 px1, ch1 px0, ch1 px1
    t = [1.0, 0.0, 0.0, 1.0]
    bce = -sum(ti * math.log(pi) + (1 - ti) * math.log(1 - pi) for pi, ti in zip(p, t)) / 4
    dice = (2 * sum(pi * ti for pi, ti in zip(p, t)) + 1) / (sum(p) + sum(t) + 1)
    expected = 0.7 * bce + 0.3 * (1 - dice)
    assert BCEDiceLoss()(logits, truth).item() == pytest.approx(expected, rel=1e-6)
    # bce-class-dice: one Dice per channel, then their mean (a rare class weighs as much as a common one)
    per_channel = [(2 * p[2 * c] * t[2 * c] + 2 * p[2 * c + 1] * t[2 * c + 1] + 1)
                   / (p[2 * c] + p[2 * c + 1] + t[2 * c] + t[2 * c + 1] + 1) for c in (0, 1)]  # fmt: skip
    expected = 0.7 * bce + 0.3 * (1 - sum(per_channel) / 2)
    assert build_loss("bce-class-dice")(logits, truth).item() == pytest.approx(expected, rel=1e-6)
    assert expected != pytest.approx(0.7 * bce + 0.3 * (1 - dice), rel=1e-3)


# two pixels, two classes: logits favour class 0 at px0 (truth 0) and class 0 at px1 (truth 1)
TWO_PX_LOGITS = torch.tensor([[[[2.0, 1.0]], [[0.0, 0.0]]]])  # (1, 2, 1, 2)
TWO_PX_TRUTH = torch.tensor([[[0, 1]]])


def _softmax_true_probs():
    p0 = math.exp(2) / (math.exp(2) + 1)  # px0, class 0
    p1 = 1 / (math.exp(1) + 1)  # px1, class 1
    return p0, p1


def test_weighted_cross_entropy_by_hand():
    p0, p1 = _softmax_true_probs()
    loss = CrossEntropyLoss([1.0, 3.0])(TWO_PX_LOGITS, TWO_PX_TRUTH).item()
    assert loss == pytest.approx((-1 * math.log(p0) - 3 * math.log(p1)) / 4, rel=1e-6)


def test_focal_loss_by_hand():
    p0, p1 = _softmax_true_probs()
    expected = (-((1 - p0) ** 2) * math.log(p0) - 3 * (1 - p1) ** 2 * math.log(p1)) / 4
    assert FocalLoss([1.0, 3.0], gamma=2)(TWO_PX_LOGITS, TWO_PX_TRUTH).item() == pytest.approx(expected, rel=1e-6)


def test_tversky_loss_by_hand():
    p0, p1 = _softmax_true_probs()
    probs = {0: [p0, 1 - p1], 1: [1 - p0, p1]}  # per class, per pixel
    truth = {0: [1, 0], 1: [0, 1]}
    losses = []
    for c in (0, 1):
        tp = sum(p * t for p, t in zip(probs[c], truth[c]))
        fp = sum(p * (1 - t) for p, t in zip(probs[c], truth[c]))
        fn = sum((1 - p) * t for p, t in zip(probs[c], truth[c]))
        losses.append(1 - (tp + 1) / (tp + 0.3 * fp + 0.7 * fn + 1))
    expected = (1 * losses[0] + 3 * losses[1]) / 4
    assert TverskyLoss([1.0, 3.0])(TWO_PX_LOGITS, TWO_PX_TRUTH).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("name", "channels"),
    [(name, 3) for name in LOSSES] + [(name, 1) for name in LOSSES if ACTIVATIONS[name] == "sigmoid"],
)
def test_loss_and_its_gradient_ignore_what_unlabelled_pixels_hold(name, channels):
    """Scribbles: the logits at unlabelled pixels may be anything; neither the loss nor the gradient at the labelled
    pixels changes, and the unlabelled pixels get no gradient at all (one-channel: binary sigmoid models)."""
    generator = torch.Generator().manual_seed(0)
    classes = 2 if channels == 1 else channels
    truth = torch.randint(classes, (2, 16, 16), generator=generator)
    unlabelled = torch.rand(2, 16, 16, generator=generator) < 0.9  # strokes: a tenth of the pixels
    truth[unlabelled] = IGNORE_INDEX
    loss = build_loss(name)
    logits = torch.randn(2, channels, 16, 16, generator=generator)
    other = torch.where(unlabelled.unsqueeze(1), 30 * torch.randn(logits.shape, generator=generator), logits)
    values, gradients = [], []
    for start in (logits, other):
        start = start.clone().requires_grad_(True)
        value = loss(start, truth)
        value.backward()
        values.append(value.item())
        gradients.append(start.grad)
    assert values[0] == pytest.approx(values[1], rel=1e-6)
    assert torch.allclose(gradients[0], gradients[1], atol=1e-7)
    assert gradients[0].abs().sum() > 0
    assert gradients[0][unlabelled.unsqueeze(1).expand_as(logits)].abs().max() == 0


def test_bce_class_dice_with_class_weights_by_hand_and_unknown_losses_are_named():
    """Two pixels of a 2-class, 2-channel image: truth [0, 1], every logit 0 (p = 0.5). Each pixel's BCE over its
    channels is log 2; weighted by the pixel's true class the BCE stays log 2 (weights cancel). The Dice of each
    channel is (2 * 0.5 + 1) / (1 + 1 + 1) = 2/3 either way. With one logit changed the pixels differ, and the
    weighted mean moves toward the heavier class's pixel as hand arithmetic says."""
    target = torch.tensor([[[0, 1]]])
    logits = torch.zeros(1, 2, 1, 2)
    weighted = build_loss("bce-class-dice", [1.0, 3.0])
    assert weighted(logits, target).item() == pytest.approx(0.7 * math.log(2) + 0.3 * (1 / 3), rel=1e-6)
    logits[0, 1, 0, 1] = 2.0  # pixel 1 (class 1) now right in its own channel: its BCE falls
    bce_0 = 2 * math.log(2) / 2  # pixel 0: both channels at p = 0.5
    bce_1 = (math.log(2) + math.log(1 + math.exp(-2))) / 2
    sig = 1 / (1 + math.exp(-2))
    dice_0 = (2 * 0.5 + 1) / (0.5 + 0.5 + 1 + 1)  # channel 0: probs 0.5, 0.5; truth 1, 0
    dice_1 = (2 * sig + 1) / (0.5 + sig + 1 + 1)  # channel 1: probs 0.5, sig; truth 0, 1
    expected = 0.7 * (1 * bce_0 + 3 * bce_1) / 4 + 0.3 * (1 * (1 - dice_0) + 3 * (1 - dice_1)) / 4
    assert weighted(logits, target).item() == pytest.approx(expected, rel=1e-6)
    plain = 0.7 * (bce_0 + bce_1) / 2 + 0.3 * ((1 - dice_0) + (1 - dice_1)) / 2
    assert build_loss("bce-class-dice")(logits, target).item() == pytest.approx(plain, rel=1e-6)
    assert build_loss("bce-class-dice", [2.0, 2.0])(logits, target).item() == pytest.approx(plain, rel=1e-6)
    with pytest.raises(ValueError, match="unknown loss 'dice2'"):
        build_loss("dice2")


def test_a_binary_models_single_channel_takes_the_foreground_weight():
    """One sigmoid channel (class 1): the BCE weighs each pixel by its true class, the one Dice term is the
    foreground's whatever its weight."""
    target = torch.tensor([[[0, 1]]])
    logits = torch.tensor([[[[0.0, 2.0]]]])
    bce_0, bce_1 = math.log(2), math.log(1 + math.exp(-2))
    sig = 1 / (1 + math.exp(-2))
    dice = (2 * sig + 1) / (0.5 + sig + 1 + 1)
    expected = 0.7 * (1 * bce_0 + 4 * bce_1) / 5 + 0.3 * (1 - dice)
    assert build_loss("bce-class-dice", [1.0, 4.0])(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_inverse_frequency_weights_by_hand():
    masks = [np.array([[0, 0, 0, 0], [0, 0, 1, 1], [1, 2, IGNORE_INDEX, IGNORE_INDEX]], dtype=np.uint8)]
    freq = class_frequencies(masks, 4)  # 10 labelled pixels: 6, 3, 1, 0
    assert freq.tolist() == pytest.approx([0.6, 0.3, 0.1, 0.0])
    # median of present frequencies = 0.3 -> 0.5, 1, 3; the absent class gets the largest (3)
    assert inverse_frequency_weights(freq) == pytest.approx([0.5, 1.0, 3.0, 3.0])
    # tempered as the crops are: the square roots at temperature 0.5, all equal at 0
    assert inverse_frequency_weights(freq, 0.5) == pytest.approx([0.5**0.5, 1.0, 3**0.5, 3**0.5])
    assert inverse_frequency_weights(freq, 0.0) == pytest.approx([1.0, 1.0, 1.0, 1.0])


def test_rare_weighs_the_loss_only_when_a_class_holds_under_one_percent():
    """Drawn masks: a 100x100 mask with 50 pixels of class 2 (0.5 %) is weighted as ``auto`` would; the same with
    200 pixels (2 %, like the NASA tertiary phase) is not weighted at all."""
    mask = np.zeros((100, 100), np.uint8)
    mask[:40] = 1
    mask[90:, :5] = 2  # 50 pixels
    frequencies = class_frequencies([mask], 3)
    assert frequencies.tolist() == pytest.approx([0.5950, 0.40, 0.005])
    weighted = derived_class_weights("rare", frequencies, 0.5)
    assert weighted == derived_class_weights("auto", frequencies, 0.5)
    assert weighted == pytest.approx([(0.40 / 0.595) ** 0.5, 1.0, (0.40 / 0.005) ** 0.5], rel=1e-5)
    mask[80:, :10] = 2  # 200 pixels: 2 %
    assert derived_class_weights("rare", class_frequencies([mask], 3), 0.5) is None
    assert derived_class_weights("auto", class_frequencies([mask], 3), 0.5) is not None

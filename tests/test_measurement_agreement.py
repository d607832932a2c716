"""Measurement agreement, intervals over images and the data-decided clean-up, on hand-drawn masks whose counts,
sizes and thickness are known, and intervals checked against the textbook normal-theory interval."""

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.draw import disk

from csunet.cleanup import CleanupRules, choose_rules, clean, derive_limits, overridden
from csunet.errors import SettingsError
from csunet.metrics import predicted_classes
from csunet.morphometry import (
    MeasureSettings,
    agreement,
    agreement_rows,
    agreement_score,
    interval_note,
    measure_masks,
    summarise,
    with_interval,
)

SETTINGS = MeasureSettings(["matrix", "particle", "oxide"])
"""oxide is a layer by its name; particle, a particle class; matrix the background."""


def drawn(centres: list[tuple[int, int]], radius: int, band: tuple[int, int]) -> np.ndarray:
    mask = np.zeros((200, 300), np.uint8)
    for centre in centres:
        mask[disk(centre, radius, shape=mask.shape)] = 1
    mask[band[0] : band[1]] = 2
    return mask


TRUTH_DISCS = [(30, 30 + 40 * i) for i in range(6)] + [(80, 30 + 40 * i) for i in range(4)]


def test_agreement_of_drawn_masks_is_the_hand_count():
    truth = {"a": drawn(TRUTH_DISCS, 8, (150, 170))}  # ten discs of radius 8, a band 20 rows thick
    predicted = {"a": drawn(TRUTH_DISCS[:8], 10, (148, 170))}  # eight discs of radius 10, 22 rows
    result = agreement(truth, predicted, SETTINGS)
    particle, oxide = result["per_class"]["particle"], result["per_class"]["oxide"]
    assert particle["count"] == {"truth": 10, "predicted": 8, "relative_error": pytest.approx(-0.2)}
    # equivalent circle diameters from the pixel counts of the drawn discs, not from regionprops
    ecd = {r: 2 * math.sqrt(disk((50, 50), r)[0].size / math.pi) for r in (8, 10)}
    assert particle["ecd_mean"]["truth"] == pytest.approx(ecd[8])
    assert particle["ecd_d50"]["relative_error"] == pytest.approx(ecd[10] / ecd[8] - 1)
    assert oxide["thickness_mean"]["truth"] == pytest.approx(20)
    assert oxide["thickness_mean"]["relative_error"] == pytest.approx(0.1)
    fractions = {k: np.mean(v["a"] == 1) for k, v in (("truth", truth), ("predicted", predicted))}
    assert particle["area_fraction"]["absolute_error"] == pytest.approx(
        fractions["predicted"] - fractions["truth"]
    )
    per_image = {row["class"]: row for row in result["per_image"]}
    assert per_image["particle"]["count"]["relative_error"] == pytest.approx(-0.2)
    assert sorted(result["particle_sizes"]["particle"]["truth"]) == pytest.approx([ecd[8]] * 10)
    rows = {(row[0], row[1]): row for row in agreement_rows(result)}
    assert rows["particle", "count"][2:] == ["10", "8", "-20.0%"]
    assert rows["oxide", "thickness mean"][4] == "+10.0%"
    assert agreement_score(agreement(truth, truth, SETTINGS)) == 0
    assert agreement_score(result) > 0.1


def test_grain_counts_are_compared():
    def grid(pitch: int) -> np.ndarray:
        mask = np.zeros((120, 120), np.uint8)
        mask[::pitch] = 1
        mask[:, ::pitch] = 1
        return mask

    settings = MeasureSettings(["grain", "boundary"], pixel_size_um=1.0)
    result = agreement({"g": grid(30)}, {"g": grid(40)}, settings)["per_class"]["boundary"]
    assert result["grains"]["truth"] == 16 and result["grains"]["predicted"] == 9
    assert "astm_g" in result and result["astm_g"]["absolute_error"] < 0


def area_fraction_masks(count: int, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    fractions = rng.uniform(0.2, 0.6, count)
    masks = {}
    for index, fraction in enumerate(fractions):
        mask = np.zeros((20, 50), np.uint8)
        mask.flat[: int(round(fraction * mask.size))] = 1
        masks[f"m{index}"] = mask
    return masks, np.array([m.mean() for m in masks.values()])


def test_interval_of_the_mean_fraction_matches_the_normal_theory_interval():
    masks, fractions = area_fraction_masks(120)
    settings = MeasureSettings(["matrix", "particle"], kinds={"particle": "matrix"})
    rows = measure_masks(masks, settings)
    entry = summarise(rows["images"], rows["particles"], settings)["particle"]
    low, high = entry["ci95"]["area_fraction_mean"]
    # large n: the bootstrap percentile interval of a mean approaches mean +- 1.96 s / sqrt(n)
    half = 1.96 * fractions.std() / math.sqrt(len(fractions))
    assert entry["area_fraction_mean"] == pytest.approx(fractions.mean())
    assert (high - low) / 2 == pytest.approx(half, rel=0.15)
    assert low < fractions.mean() < high
    assert with_interval(entry, "area_fraction_mean").startswith(f"{fractions.mean():.3g} ± ")


def test_one_image_gets_no_interval_and_says_why():
    masks, _ = area_fraction_masks(1)
    settings = MeasureSettings(["matrix", "particle"])
    rows = measure_masks(masks, settings)
    entry = summarise(rows["images"], rows["particles"], settings)["particle"]
    assert "ci95" not in entry and "±" not in with_interval(entry, "area_fraction_mean")
    assert "none is given" in interval_note(1) and "4 images" in interval_note(4)


def test_summary_counts_pool_the_images():
    truth = {"a": drawn(TRUTH_DISCS, 8, (150, 170)), "b": drawn(TRUTH_DISCS[:4], 8, (150, 160))}
    rows = measure_masks(truth, SETTINGS)
    summary = summarise(rows["images"], rows["particles"], SETTINGS)
    assert summary["particle"]["count"] == 14
    assert summary["oxide"]["thickness_px_mean"] == pytest.approx(15)
    low, high = summary["particle"]["ci95"]["count"]
    assert low == 8 and high == 20  # the resamples are {b, b}, {a, b} and {a, a}


# ---------------------------------------------------------------- clean-up rules, each where it must act and not


def rules(rule: str, name: str, limit: int, classes=("matrix", "particle", "other")) -> CleanupRules:
    return CleanupRules(list(classes), 0, {rule: {name: limit}}, {rule: [name]})


def test_small_regions_go_to_the_class_around_them():
    mask = np.zeros((40, 40), np.uint8)
    mask[5:8, 5:8] = 1  # 9 px: below the limit
    mask[20:26, 20:26] = 1  # 36 px: a real particle
    mask[30:40, 0:10] = 2
    mask[33:35, 3:5] = 1  # a speck inside the other class
    mask[0:2, 30:33] = 1  # 6 px cut by the border: maybe the edge of a large particle
    cleaned = clean(mask, rules("small_regions", "particle", 20))
    assert (cleaned[5:8, 5:8] == 0).all() and (cleaned[20:26, 20:26] == 1).all()
    assert (cleaned[0:2, 30:33] == 1).all()
    assert (cleaned[33:35, 3:5] == 2).all()
    assert (mask[5:8, 5:8] == 1).all()  # the input is left as it was


def test_a_small_region_goes_whole_to_the_class_it_borders_most():
    mask = np.zeros((40, 40), np.uint8)
    mask[10:20, 10:20] = 2
    mask[14:16, 20:26] = 1  # 12 px: touches class 2 along 2 rows, the matrix along the other three sides
    cleaned = clean(mask, rules("small_regions", "particle", 20))
    assert (cleaned[14:16, 20:26] == 0).all()  # not split, its first column given to class 2
    mask[14:16, 20:26] = 0
    mask[12:18, 17:20] = 1  # 18 px in a notch of class 2: its border is mostly with class 2
    assert (clean(mask, rules("small_regions", "particle", 20))[12:18, 17:20] == 2).all()


def test_fragments_on_another_class_join_it_and_lone_ones_stay():
    mask = np.zeros((40, 40), np.uint8)
    mask[10:20, 10:20] = 2
    mask[10:12, 20:22] = 1  # a 4 px fragment on the rim of class 2
    mask[30:32, 30:32] = 1  # the same fragment alone in the matrix
    cleaned = clean(mask, rules("fragments", "particle", 10))
    assert (cleaned[10:12, 20:22] == 2).all() and (cleaned[30:32, 30:32] == 1).all()


def test_small_holes_are_filled_and_larger_ones_kept():
    mask = np.zeros((60, 60), np.uint8)
    mask[disk((20, 20), 12)] = 1
    mask[19:21, 19:21] = 0  # a 4 px hole
    mask[disk((45, 45), 12)] = 1
    mask[43:48, 43:48] = 0  # a 25 px hole
    cleaned = clean(mask, rules("holes", "particle", 10))
    assert (cleaned[19:21, 19:21] == 1).all() and (cleaned[43:48, 43:48] == 0).all()


def test_touching_particles_are_split_and_single_ones_are_not():
    mask = np.zeros((60, 100), np.uint8)
    mask[disk((30, 30), 12)] = 1
    mask[disk((30, 50), 12)] = 1  # overlaps the first: one region of two particles
    single = np.zeros((60, 100), np.uint8)
    single[disk((30, 50), 12)] = 1
    settings = MeasureSettings(["matrix", "particle"])
    cut = rules("split_touching", "particle", 6, ("matrix", "particle"))
    count = lambda m: measure_masks({"m": m}, settings)["images"][1]["count"]  # noqa: E731
    assert count(mask) == 1 and count(clean(mask, cut)) == 2
    assert (clean(single, cut) == single).all()
    # particles with no single deepest point (a one-pixel line, a two-pixel speck: flat distance maps) stay whole
    flat = np.zeros((60, 100), np.uint8)
    flat[10, 20:60] = 1
    flat[40:42, 70] = 1
    assert (clean(flat, cut) == flat).all()


def test_limits_come_from_the_training_masks():
    mask = np.zeros((100, 100), np.uint8)
    for index, side in enumerate(range(3, 13)):  # ten square particles of 9 .. 144 px, away from the border
        top = 5 + 9 * index
        mask[top : top + side // 2 + 1, 5 : 5 + side] = 1
    mask[60:90, 50:90] = 2
    mask[70:73, 60:63] = 0  # a 9 px hole in class 2
    mask[60:62, 48:50] = 1  # a 4 px particle touching class 2
    limits = derive_limits([mask], MeasureSettings(["matrix", "particle", "other"]))
    areas = [(side // 2 + 1) * side for side in range(3, 13)] + [4]
    assert limits["small_regions"]["particle"] == int(np.percentile(areas, 1))
    assert limits["fragments"]["particle"] == 4  # the smallest particle touching class 2
    assert limits["holes"]["other"] == 9
    assert limits["split_touching"]["particle"] >= 2


def test_validation_keeps_a_rule_only_where_it_helps():
    train = [drawn(TRUTH_DISCS, 8, (150, 170))]
    truth = {"a": drawn(TRUTH_DISCS, 8, (150, 170))}
    specked = truth["a"].copy()
    for column in range(10, 290, 20):
        specked[120:122, column : column + 2] = 1  # 14 specks of 4 px in the matrix: spurious particles
    kept = choose_rules(train, truth, {"a": specked}, SETTINGS)
    assert kept.kept.get("small_regions") == ["particle"]
    assert (clean(specked, kept) == truth["a"]).all()
    assert any(line.startswith("small_regions particle") and "kept" in line for line in kept.decisions)
    untouched = choose_rules(train, truth, {"a": truth["a"]}, SETTINGS)
    assert not untouched.active() and untouched.describe() == "none"


def grown_logits(truth: np.ndarray, by: float) -> torch.Tensor:
    """Two-class logits whose arg-max is the particles of ``truth`` grown by ``by`` pixels: the particle logit is
    the signed distance to the outline (+ ``by``), the matrix logit 0."""
    particle = truth == 1
    signed = ndimage.distance_transform_edt(particle) - ndimage.distance_transform_edt(~particle)
    return torch.from_numpy(np.stack([np.zeros_like(signed), signed + by]).astype(np.float32))


def test_validation_keeps_the_offset_that_draws_outlines_as_the_truth_does():
    truth = {"a": (drawn(TRUTH_DISCS, 8, (150, 170)) == 1).astype(np.uint8)}
    settings = MeasureSettings(["matrix", "particle"])
    logits = {"a": grown_logits(truth["a"], 1.2)}
    grown = {"a": logits["a"].argmax(0).numpy().astype(np.uint8)}
    assert grown["a"].sum() > truth["a"].sum()  # each disc a pixel wider along rows and columns
    chosen = choose_rules([truth["a"]], truth, grown, settings, logits)
    # every offset from -0.25 to -2 gives the truth back (distances are whole pixels): the smallest is kept
    assert chosen.offsets == {"particle": -0.25} and chosen.describe().startswith("offset particle -0.25")
    assert (chosen.shifted(logits["a"]).argmax(0).numpy() == truth["a"]).all()
    assert any(line.startswith("offset particle") and "kept" in line for line in chosen.decisions)
    exact = {"a": grown_logits(truth["a"], 0.0)}
    assert not choose_rules([truth["a"]], truth, truth, settings, exact).offsets  # nothing to correct: no offset


def test_validation_keeps_the_largest_gain_first_and_then_what_still_helps():
    truth = {"a": (drawn(TRUTH_DISCS, 8, (150, 170)) == 1).astype(np.uint8)}
    settings = MeasureSettings(["matrix", "particle"])
    logits = grown_logits(truth["a"], 1.2)  # outlines a pixel too wide: sizes off by about a tenth
    for column in range(10, 290, 20):  # and 14 specks of 9 px in the matrix: the count off by 140 %
        logits[1, 120:123, column : column + 3] = 5.0
    predicted = {"a": logits.argmax(0).numpy().astype(np.uint8)}
    chosen = choose_rules([truth["a"]], truth, predicted, settings, {"a": logits})
    assert chosen.kept.get("small_regions") == ["particle"] and chosen.offsets == {"particle": -0.25}
    lines = {line.split(" (")[0]: line for line in chosen.decisions}
    assert "kept in round 1" in lines["small_regions particle"]  # the specks skew the numbers most
    assert "kept in round 2" in lines["offset particle"]
    cleaned = clean(predicted_classes(chosen.shifted(logits)[None])[0].numpy().astype(np.uint8), chosen)
    assert (cleaned == truth["a"]).all()


def test_a_binary_models_offset_moves_its_one_channel():
    rules_ = CleanupRules(["background", "oxide"], 0, offsets={"oxide": -0.5})
    logits = torch.tensor([[[0.2, 0.7]]])
    assert torch.allclose(rules_.shifted(logits), torch.tensor([[[-0.3, 0.2]]]))
    three = CleanupRules(["matrix", "a", "b"], 0, offsets={"b": 1.0}).shifted(torch.zeros(3, 1, 1))
    assert three.flatten().tolist() == [0.0, 0.0, 1.0]


def test_overrides_change_limits_and_switch_rules():
    base = rules("small_regions", "particle", 20)
    assert overridden(base, ["off"]) is None and overridden(base, []) is base
    changed = overridden(base, ["small_regions.particle=50", "holes.other=7"])
    assert changed.limits["small_regions"]["particle"] == 50 and changed.kept["holes"] == ["other"]
    assert not overridden(base, ["small_regions.particle=off"]).active()
    shifted = overridden(base, ["offset.other=-0.5"])
    assert shifted.offsets == {"other": -0.5} and "offset other -0.5" in shifted.describe()
    assert overridden(shifted, ["offset.other=off"]).offsets == {}
    for bad in ("small_regions=3", "holes.nothing=4", "small_regions.particle=-1", "split.particle=3",
                "offset.other=much", "offset.other=nan"):  # fmt: skip
        with pytest.raises(SettingsError, match="--cleanup"):
            overridden(base, [bad])
    with pytest.raises(SettingsError, match="records no clean-up"):
        overridden(None, ["holes.other=4"])

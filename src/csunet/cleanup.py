"""Clean-up of predicted masks that the data decides: what the training masks never show is taken out of the
arg-max mask before anyone measures it.

Pixel IoU hides what skews the numbers users publish: a few-pixel patch of one class on the rim of another becomes a
"particle", a missed pixel a "hole". Each rule has a per-class limit derived from the training masks
(:func:`derive_limits`), and a rule is kept for a class only when it brings the measurements of the validation
split closer to the truth's without lowering the validation mask IoU (:func:`choose_rules`: forward selection, the
largest gain first, logit offsets per class among the candidates). The kept rules and the reasons travel in the
checkpoint, so `predict`, `evaluate`, napari and the demo clean alike (:func:`clean`).

Rules, in the order they are applied:

- ``small_regions`` (particle classes): a region smaller than the smallest real particle (the 1st percentile of the
  training particles' areas, border particles left out) goes, whole, to the class it shares the longest border with.
- ``fragments`` (classes but the background): a region that touches a region of another non-background class and is
  smaller than any such region in the training masks (at most the class's 10th percentile area) goes to that class.
- Regions cut by the image border are left alone by both: they may be the edge of a large one.
- ``holes`` (classes but the background): an enclosed hole smaller than the training masks' smallest hole in that
  class (or, with none there, its 1st-percentile region area) is filled with the class.
- ``split_touching`` (particle classes): touching particles are cut apart along a distance-transform watershed,
  seeds at least half the training particles' median radius apart; the cut line goes to the background.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from scipy import ndimage
from skimage.segmentation import watershed

from csunet.checkpoint import CheckpointMeta
from csunet.data.masks import IGNORE_INDEX
from csunet.errors import SettingsError
from csunet.metrics import mask_mean_iou, predicted_classes
from csunet.morphometry import MeasureSettings, agreement, agreement_score, border_labels, measure_masks

RULES = ("small_regions", "fragments", "holes", "split_touching")
OFFSETS = (-2.0, -1.5, -1.0, -0.5, -0.25, 0.25, 0.5, 1.0)
"""Logit offsets tried per class on validation before the mask rules (``offset``; 0: none)."""
MIN_GAIN = 0.001
"""A rule is kept only when it lowers the validation measurement error by at least this much (a tenth of a percent,
what the agreement tables show): a gain in the noise must not spend the IoU tolerance that a later rule may need."""
IOU_TOLERANCE = 0.001
"""A kept rule may lower the validation mask IoU by at most this much (a rounding's worth), from the masks before it
and from the masks as predicted."""
EIGHT = np.ones((3, 3), bool)
FOUR = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)
"""Holes are 4-connected: two hole pixels touching only at a corner are separated by the class around them."""


@dataclass
class CleanupRules:
    """Per-class limits (in pixels) derived from the training masks, which (rule, class) pairs validation kept, and
    why. ``kept`` empty: the masks are left as the model predicts them."""

    classes: list[str]
    background: int | None
    limits: dict[str, dict[str, int]] = field(default_factory=dict)
    """rule -> class name -> limit in pixels (a minimum distance for ``split_touching``)."""
    kept: dict[str, list[str]] = field(default_factory=dict)
    """rule -> the class names it acts on."""
    decisions: list[str] = field(default_factory=list)
    """One line per (rule, class) tried on validation: kept or not, and the numbers that decided."""
    offsets: dict[str, float] = field(default_factory=dict)
    """class name -> a number added to its logit before the arg-max (a binary model's one channel: the foreground
    class's), where validation kept one."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CleanupRules:
        return cls(**data)

    def active(self) -> bool:
        return any(self.kept.values()) or any(self.offsets.values())

    def only(self, kept: dict[str, list[str]], offsets: dict[str, float] | None = None) -> CleanupRules:
        offsets = self.offsets if offsets is None else offsets
        return CleanupRules(self.classes, self.background, self.limits, kept, self.decisions, offsets)

    def describe(self) -> str:
        """``offset tertiary -1; small_regions tertiary < 12 px; holes secondary < 40 px`` or ``none``."""
        parts = [f"offset {name} {value:+g}" for name, value in self.offsets.items() if value]
        parts += [f"{rule} {name} {'>=' if rule == 'split_touching' else '<'} {self.limits[rule][name]} px"
                  for rule in RULES for name in self.kept.get(rule, [])]  # fmt: skip
        return "; ".join(parts) or "none"

    def shifted(self, logits: torch.Tensor) -> torch.Tensor:
        """(K, H, W) ``logits`` with the kept offsets added (the arg-max of the result is the mask to clean)."""
        if not any(self.offsets.values()):
            return logits
        channels = self.classes if logits.shape[0] > 1 else self.classes[1:2]
        shift = torch.tensor([self.offsets.get(name, 0.0) for name in channels], dtype=logits.dtype)
        return logits + shift[:, None, None]


def _regions(mask: np.ndarray, structure: np.ndarray = EIGHT) -> tuple[np.ndarray, np.ndarray]:
    """Labels of ``mask``'s connected regions and each label's area (index 0: outside)."""
    labels, _ = ndimage.label(mask, structure)
    return labels, np.bincount(labels.ravel())


def _inner_areas(region: np.ndarray, structure: np.ndarray = EIGHT) -> np.ndarray:
    """Areas of the regions that do not touch the image border (cut regions' areas say nothing)."""
    labels, areas = _regions(region, structure)
    inner = np.ones(areas.size, bool)
    inner[border_labels(labels)] = False
    inner[0] = False
    return areas[inner]


def _other_phases(mask: np.ndarray, index: int, background: int | None) -> np.ndarray:
    """Pixels of every labelled class but ``index`` and the background: what a fragment of ``index`` may stick to."""
    others = (mask != index) & (mask != IGNORE_INDEX)
    if background is not None:
        others &= mask != background
    return others


def _touching(labels: np.ndarray, other: np.ndarray) -> np.ndarray:
    """The labels of ``labels``'s regions that have an 8-neighbour in ``other``."""
    return np.unique(labels[ndimage.binary_dilation(other, EIGHT) & (labels > 0)])


def derive_limits(masks: list[np.ndarray], settings: MeasureSettings) -> dict[str, dict[str, int]]:
    """Each rule's per-class limit in pixels from the training masks (see the module's docstring)."""
    limits: dict[str, dict[str, int]] = {rule: {} for rule in RULES}
    background = settings.background
    for index, name in enumerate(settings.classes):
        if index == background or settings.kind(index) in ("layer", "boundary"):
            continue
        areas, touching, holes = [], [], []
        for mask in masks:
            region = mask == index
            areas.append(_inner_areas(region))
            others = _other_phases(mask, index, background)
            labels, sizes = _regions(region)
            touching.append(sizes[_touching(labels, others)])
            holes.append(_inner_areas(~region, FOUR))
        areas = np.concatenate(areas)
        if areas.size == 0:
            continue
        low, tenth = int(np.percentile(areas, 1)), int(np.percentile(areas, 10))
        touching, holes = np.concatenate(touching), np.concatenate(holes)
        limits["fragments"][name] = int(min(touching.min(), tenth)) if touching.size else tenth
        limits["holes"][name] = int(holes.min()) if holes.size else low
        if settings.kind(index) == "particle":
            limits["small_regions"][name] = max(low, 1)
            radius = np.sqrt(np.median(areas) / np.pi)
            limits["split_touching"][name] = max(2, int(round(radius / 2)))
    return limits


def _give_away(mask: np.ndarray, chosen: np.ndarray, allowed: np.ndarray) -> None:
    """Every ``chosen`` pixel takes the class of the nearest ``allowed`` pixel (in place)."""
    if chosen.any() and allowed.any():
        _, (rows, cols) = ndimage.distance_transform_edt(~allowed, return_indices=True)
        mask[chosen] = mask[rows[chosen], cols[chosen]]


def _bordering_class(labels: np.ndarray, mask: np.ndarray, index: int) -> np.ndarray:
    """For each label of ``labels`` (regions of class ``index``), the class other than ``index`` that it shares the
    longest border with (8-neighbour pairs counted); ``index`` itself where it borders no other labelled class."""
    classes = int(max(mask.max(), index)) + 1
    counts = np.zeros((labels.max() + 1, classes), np.int64)
    rows, cols = mask.shape
    for dr, dc in ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)):
        inside = labels[max(dr, 0) : rows + min(dr, 0), max(dc, 0) : cols + min(dc, 0)]
        beside = mask[max(-dr, 0) : rows + min(-dr, 0), max(-dc, 0) : cols + min(-dc, 0)]
        pairs = (inside > 0) & (beside != index) & (beside != IGNORE_INDEX)
        np.add.at(counts, (inside[pairs], beside[pairs].astype(np.int64)), 1)
    bordering = counts.argmax(axis=1)
    bordering[counts.max(axis=1) == 0] = index
    return bordering


def _small_regions(mask: np.ndarray, index: int, limit: int, background: int | None) -> None:
    """Each small region goes, whole, to the class it shares the longest border with: splitting it between its
    neighbours pixel by pixel would grow a small neighbouring phase (a speck beside a tertiary precipitate)."""
    labels, areas = _regions(mask == index)
    chosen = areas < limit
    chosen[border_labels(labels)] = False  # a region cut by the border may be the edge of a large one
    chosen[0] = False
    labels[~chosen[labels]] = 0
    if labels.any():
        small = labels > 0
        mask[small] = _bordering_class(labels, mask, index)[labels[small]]


def _fragments(mask: np.ndarray, index: int, limit: int, background: int | None) -> None:
    others = _other_phases(mask, index, background)
    labels, areas = _regions(mask == index)
    chosen = np.zeros(areas.size, bool)
    chosen[_touching(labels, others)] = True
    chosen &= areas < limit
    chosen[border_labels(labels)] = False
    chosen[0] = False
    _give_away(mask, chosen[labels], others)


def _holes(mask: np.ndarray, index: int, limit: int, background: int | None) -> None:
    labels, areas = _regions(mask != index, FOUR)
    small = areas < limit
    small[border_labels(labels)] = False
    small[0] = False
    mask[small[labels]] = index


def _seeds(distance: np.ndarray, labels: np.ndarray, spacing: int) -> np.ndarray:
    """Watershed seeds: the maxima of ``distance`` within ``spacing`` pixels (square window), maxima closer than
    that to each other merged into one seed, and every region of ``labels`` given at least one (its deepest
    point). skimage's ``peak_local_max`` does the same per point, and on the broad plateaus of a noisy prediction's
    distance map spends minutes spacing hundreds of thousands of equal candidates."""
    window = np.ones((2 * spacing + 1,) * 2, bool)
    maxima = (distance == ndimage.maximum_filter(distance, footprint=window, mode="constant")) & (labels > 0)
    near = ndimage.binary_dilation(maxima, np.ones((spacing + 1,) * 2, bool)) & (labels > 0)
    groups, count = ndimage.label(near, EIGHT)
    seeds = np.where(maxima, groups, 0)
    unseeded = np.setdiff1d(np.unique(labels[labels > 0]), labels[seeds > 0])
    if unseeded.size:
        deepest = np.array(ndimage.maximum_position(distance, labels, unseeded)).reshape(-1, 2)
        seeds[tuple(deepest.T)] = np.arange(count + 1, count + 1 + len(deepest))
    return seeds


def _split_touching(mask: np.ndarray, index: int, limit: int, background: int | None) -> None:
    if background is None:
        return
    region = mask == index
    labels, _ = ndimage.label(region, EIGHT)
    distance = ndimage.distance_transform_edt(region)
    cut = watershed(-distance, _seeds(distance, labels, limit), mask=region, watershed_line=True)
    mask[region & (cut == 0)] = background


ACTIONS: dict[str, Callable[[np.ndarray, int, int, int | None], None]] = {
    "small_regions": _small_regions,
    "fragments": _fragments,
    "holes": _holes,
    "split_touching": _split_touching,
}


def clean(mask: np.ndarray, rules: CleanupRules | None) -> np.ndarray:
    """The mask with the kept rules applied, in :data:`RULES` order (a copy; ``mask`` is left as it was)."""
    if rules is None or not any(rules.kept.values()):
        return mask
    cleaned = mask.copy()
    for rule in RULES:
        for name in rules.kept.get(rule, []):
            ACTIONS[rule](cleaned, rules.classes.index(name), rules.limits[rule][name], rules.background)
    return cleaned


@dataclass
class _Trial:
    """One candidate (a class's offset, or a rule for a class) on top of what was kept so far, as validation saw it."""

    score: float
    iou: float
    masks: dict[str, np.ndarray]
    passes: bool
    kept: dict[str, list[str]]
    offsets: dict[str, float]
    changes: bool = True


def choose_rules(
    train_masks: list[np.ndarray],
    truth: dict[str, np.ndarray],
    predicted: dict[str, np.ndarray],
    settings: MeasureSettings,
    logits: dict[str, torch.Tensor] | None = None,
) -> CleanupRules:
    """Derive the limits from ``train_masks``, then keep what brings the measurements of the ``predicted``
    validation masks closer to those of their ``truth`` (an :func:`~csunet.morphometry.agreement_score` lower by
    :data:`MIN_GAIN` or more) while their mean mask IoU stays within :data:`IOU_TOLERANCE` of the masks before it and
    of the masks as predicted. Candidates: each (rule, class) and, given the images' ``logits``, a logit offset per
    class (the best of :data:`OFFSETS` that passes), which corrects outlines drawn too wide or too narrow.

    Forward selection: each round tries every candidate not yet kept on top of those kept, and keeps the one that
    lowers the error most; it stops when none passes. The order candidates are listed in decides nothing (with a
    fixed order, an early small gain could spend the IoU tolerance that a larger one needed). Rules are applied in
    :data:`RULES` order, whichever round kept them."""
    rules = CleanupRules(list(settings.classes), settings.background, derive_limits(train_masks, settings))
    classes = len(settings.classes)
    truth_measured = measure_masks(truth, settings, shapes=False)

    def arg_max(new_offsets: dict[str, float]) -> dict[str, np.ndarray]:
        shifting = rules.only({}, new_offsets)
        return {image: predicted_classes(shifting.shifted(value.float())[None])[0].numpy().astype(np.uint8)
                for image, value in (logits or {}).items()}  # fmt: skip

    def masks_for(new_kept: dict[str, list[str]], new_offsets: dict[str, float]) -> dict[str, np.ndarray]:
        # the arg-max under the kept offsets is made once per change of them, every rule's trial starts from it
        trial = rules.only(new_kept, new_offsets)
        start = base if new_offsets == offsets else arg_max(new_offsets)
        return {image: clean(mask, trial) for image, mask in start.items()}

    def judged(masks: dict[str, np.ndarray]) -> tuple[float, float]:
        score = agreement_score(agreement(truth, masks, settings, truth_measured))
        return score, mask_mean_iou(list(truth.values()), list(masks.values()), classes)

    kept, offsets, current, base = {}, {}, dict(predicted), dict(predicted)
    score, iou = judged(current)
    first_score, first_iou = score, iou

    def passes(new_iou: float) -> bool:  # per candidate, and over all kept together: small drops must not add up
        return new_iou >= max(iou, first_iou) - IOU_TOLERANCE

    def trial(new_kept: dict[str, list[str]], new_offsets: dict[str, float]) -> _Trial:
        masks = masks_for(new_kept, new_offsets)
        if all(np.array_equal(masks[image], current[image]) for image in masks):
            return _Trial(score, iou, masks, False, new_kept, new_offsets, changes=False)
        new_score, new_iou = judged(masks)
        return _Trial(new_score, new_iou, masks, passes(new_iou), new_kept, new_offsets)

    offset_classes = []
    if logits is not None:
        channels = rules.classes if next(iter(logits.values())).shape[0] > 1 else rules.classes[1:2]
        offset_classes = [name for name in channels
                          if settings.background is None or name != rules.classes[settings.background]]  # fmt: skip
    candidates = [("offset", name) for name in offset_classes]
    candidates += [(rule, name) for rule in RULES for name in rules.limits[rule]]
    lines: dict[tuple[str, str], str] = {}
    for round_ in range(1, len(candidates) + 1):
        tried: dict[tuple[str, str], _Trial] = {}
        for rule, name in candidates:
            if (rule, name) in lines:
                continue
            if rule == "offset":
                options = [trial(kept, {**offsets, name: value}) for value in OFFSETS]
                passing = [t for t in options if t.passes]
                # the lowest error; of equal ones, the smallest change
                tried[rule, name] = min(passing or options, key=lambda t: (t.score, abs(t.offsets[name])))
            else:
                tried[rule, name] = trial({**kept, rule: [*kept.get(rule, []), name]}, offsets)
        better = {key: t for key, t in tried.items() if t.passes and t.score <= score - MIN_GAIN}
        if not better:
            break
        key = min(better, key=lambda k: better[k].score)
        chosen = better[key]
        lines[key] = f"kept in round {round_}, {_numbers(score, iou, chosen)}"
        if chosen.offsets != offsets:
            base = arg_max(chosen.offsets)
        kept, offsets, current, score, iou = chosen.kept, chosen.offsets, chosen.masks, chosen.score, chosen.iou
    rules.kept, rules.offsets = kept, offsets
    rules.decisions.append(f"as predicted: measurement error {first_score:.4f}, mask IoU {first_iou:.4f}")
    for rule, name in candidates:
        if (rule, name) in lines:
            chosen_line = lines[rule, name]
        elif not tried[rule, name].changes:
            chosen_line = "not kept, it changes nothing here"
        else:
            chosen_line = f"not kept, {_numbers(score, iou, tried[rule, name])}"
        if rule == "offset":
            value = offsets[name] if (rule, name) in lines else tried[rule, name].offsets[name]
            rules.decisions.append(f"offset {name} ({value:+g}, the best of {OFFSETS[0]:+g} .. {OFFSETS[-1]:+g}): "
                                   f"{chosen_line}")  # fmt: skip
        else:
            rules.decisions.append(f"{rule} {name} ({'at least' if rule == 'split_touching' else 'limit'} "
                                   f"{rules.limits[rule][name]} px): {chosen_line}")  # fmt: skip
    return rules


def _numbers(score: float, iou: float, trial: _Trial) -> str:
    return f"measurement error {score:.4f} -> {trial.score:.4f}, mask IoU {iou:.4f} -> {trial.iou:.4f}"


def rules_from_meta(meta: CheckpointMeta) -> CleanupRules | None:
    """The checkpoint's clean-up (None: trained before clean-up existed, or never chosen)."""
    return None if meta.cleanup is None else CleanupRules.from_dict(meta.cleanup)


def overridden(rules: CleanupRules | None, settings: list[str]) -> CleanupRules | None:
    """``rules`` changed by ``RULE.CLASS=PIXELS`` (a limit, the rule then kept for the class), ``offset.CLASS=NUMBER``
    (a logit offset) or ``RULE.CLASS=off`` settings; ``off`` alone switches every rule off."""
    if settings == ["off"]:
        return None
    if not settings:
        return rules
    if rules is None:
        raise SettingsError("--cleanup: this checkpoint records no clean-up limits to change; use a newer run")
    limits = {rule: dict(values) for rule, values in rules.limits.items()}
    kept = {rule: list(names) for rule, names in rules.kept.items()}
    offsets = dict(rules.offsets)
    for setting in settings:
        key, _, value = setting.partition("=")
        rule, _, name = key.partition(".")
        if rule not in (*RULES, "offset") or name not in rules.classes or not value:
            raise SettingsError(
                f"--cleanup {setting!r}: expected RULE.CLASS=PIXELS, offset.CLASS=NUMBER or RULE.CLASS=off, with "
                f"RULE one of {', '.join(RULES)} and CLASS one of {', '.join(rules.classes)}; or off"
            )
        if rule == "offset":
            offsets[name] = 0.0 if value == "off" else _number(setting, value)
            continue
        names = kept.setdefault(rule, [])
        if value == "off":
            kept[rule] = [n for n in names if n != name]
            continue
        if not value.isdigit() or int(value) < 1:
            raise SettingsError(f"--cleanup {setting!r}: the limit is a whole number of pixels, at least 1")
        limits.setdefault(rule, {})[name] = int(value)
        if name not in names:
            names.append(name)
    offsets = {name: value for name, value in offsets.items() if value}
    return CleanupRules(rules.classes, rules.background, limits, kept, [*rules.decisions, f"changed: {settings}"],
                        offsets)  # fmt: skip


def _number(setting: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not np.isfinite(number):
        raise SettingsError(f"--cleanup {setting!r}: an offset is a number added to the class's logit, e.g. -0.5")
    return number

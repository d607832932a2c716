"""Summaries of a dataset: what `csunet data info` prints, and `csunet data init`'s guess at a description."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import yaml

from csunet.data.dataset import DESCRIPTION_FILE, load_pair, pair_split
from csunet.data.description import OTHER_COLOUR, DatasetDescription
from csunet.data.errors import DataError
from csunet.data.io import is_grey_rgb, is_image_file, read_array
from csunet.data.masks import IGNORE_INDEX, format_colour


def dataset_info(description: DatasetDescription) -> dict:
    """Per split: counts, sizes, dtypes, per-class pixel fractions (of the labelled pixels), the share of pixels
    labelled (1.0 for dense masks) overall and per class, unpaired files and unreadable files.

    Bad files are collected as errors rather than raised, so one look shows every problem in a dataset.
    """
    report: dict = {
        "name": description.name,
        "classes": description.classes,
        "splits": {},
        "warnings": [],
        "errors": [],
    }
    for split in description.splits:
        try:
            pairing = pair_split(description, split)
        except DataError as exc:
            report["errors"].append(str(exc))
            continue
        message = pairing.warning(f"{description.name}/{split}")
        if message:
            report["warnings"].append(message)
        counts = np.zeros(description.num_classes + 1, dtype=np.int64)  # last slot: ignored pixels
        sizes: Counter = Counter()
        dtypes: Counter = Counter()
        mask_dtypes: Counter = Counter()
        for image_path, mask_path in pairing.pairs:
            try:
                raw, raw_mask = read_array(image_path), read_array(mask_path)
                image, mask = load_pair(image_path, mask_path, description, raw, raw_mask)
            except DataError as exc:
                report["errors"].append(str(exc))
                continue
            sizes[f"{image.shape[1]}x{image.shape[0]}"] += 1
            dtypes[f"{raw.dtype} {image.shape[-1]}ch"] += 1
            mask_dtypes[f"{raw_mask.dtype} {raw_mask.shape[-1] if raw_mask.ndim == 3 else 1}ch"] += 1
            binned = np.bincount(mask.ravel(), minlength=256)
            counts[:-1] += binned[: description.num_classes]
            counts[-1] += binned[IGNORE_INDEX]
        labelled = counts[:-1].sum()
        if not pairing.pairs:
            report["warnings"].append(f"{description.name}/{split}: empty split (no image with a matching mask)")
        elif labelled:
            absent = [c for i, c in enumerate(description.classes) if counts[i] == 0]
            if absent:
                report["warnings"].append(
                    f"{description.name}/{split}: no image holds class {', '.join(absent)}: check the class list "
                    "and the mask values (a class absent from a split scores IoU 0 there wherever a model "
                    "predicts it)"
                )
        report["splits"][split] = {
            "images": len(pairing.pairs) + len(pairing.images_without_mask),
            "pairs": len(pairing.pairs),
            "images_without_mask": [p.name for p in pairing.images_without_mask],
            "masks_without_image": [p.name for p in pairing.masks_without_image],
            "sizes": dict(sizes),
            "dtypes": dict(dtypes),
            "mask_dtypes": dict(mask_dtypes),
            "class_fractions": {
                c: (float(counts[i] / labelled) if labelled else 0.0) for i, c in enumerate(description.classes)
            },
            "ignored_pixels": int(counts[-1]),
            "labelled_share": float(labelled / max(int(counts.sum()), 1)) if pairing.pairs else 0.0,
            "class_labelled_shares": {
                c: float(counts[i] / max(int(counts.sum()), 1)) for i, c in enumerate(description.classes)
            },
        }
    return report


def _find_folders(root: Path) -> dict[str, dict[str, str]]:
    """Image/mask folder pairs under ``root``: NASA's ``split`` + ``split_annot``, or images/ + masks|labels/."""
    subdirs = {p.name: p for p in root.iterdir() if p.is_dir()}
    splits = {}
    for name in sorted(subdirs):
        if name + "_annot" in subdirs:
            splits[name] = {"images": name, "masks": name + "_annot"}
    if splits:
        return splits
    for images in ("images", "imgs", "image"):
        for masks in ("masks", "labels", "annotations", "mask", "label"):
            if images in subdirs and masks in subdirs:
                return {"all": {"images": images, "masks": masks}}
    raise DataError(
        f"{root}: no image/mask folders found; expected <split>/ with <split>_annot/ (train, val, test), "
        "or images/ with masks/ (or labels/)"
    )


def _guess_suffix(image_dir: Path, mask_dir: Path) -> str:
    image_stems = {p.stem for p in image_dir.iterdir() if is_image_file(p)}
    mask_stems = [p.stem for p in mask_dir.iterdir() if is_image_file(p)]
    if any(s in image_stems for s in mask_stems):
        return ""
    for suffix in ("_mask", "_label", "_labels", "_annot", "-mask", "_seg"):
        if any(s.endswith(suffix) and s[: -len(suffix)] in image_stems for s in mask_stems):
            return suffix
    return ""


def init_description(folder: str | Path, max_colours: int = 16) -> dict:
    """A first dataset description for ``folder``, found by inspecting its masks (to be reviewed by a person).

    Single-channel (or grey) masks become an index encoding with one class per value; colour masks become a
    colour encoding with one class per non-grey colour and the grey pixels (an overlay on the micrograph, as
    NASA's Super masks) as the default class.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: folder does not exist")
    splits = _find_folders(root)
    first = next(iter(splits.values()))
    suffix = _guess_suffix(root / first["images"], root / first["masks"])
    values: Counter = Counter()
    colours: Counter = Counter()
    grey_pixels = 0
    mask_files = [
        p for entry in splits.values() for p in sorted((root / entry["masks"]).iterdir()) if is_image_file(p)
    ]
    if not mask_files:
        raise DataError(f"{root}: mask folders hold no image files")
    single_channel = []
    for path in mask_files:
        raw = read_array(path)
        if raw.ndim == 2 or is_grey_rgb(raw):
            plane = raw if raw.ndim == 2 else raw[..., 0]
            if np.issubdtype(plane.dtype, np.floating):
                if not np.all(np.mod(plane, 1) == 0):
                    raise DataError(
                        f"{path}: mask values are fractions ({plane.dtype}, e.g. {plane[np.mod(plane, 1) != 0][0]:g}), "
                        "not class numbers; save masks as integer images with one whole number per class"
                    )
                plane = plane.astype(np.int64)
            uniques, counts = np.unique(plane, return_counts=True)
            values.update(dict(zip(uniques.tolist(), counts.tolist())))
        if raw.ndim == 2:
            single_channel.append(path)
            continue
        # a colour mask may be all grey (an overlay with nothing painted): count it as colour too
        scale = 257 if raw.dtype == np.uint16 else 1
        rgb = (raw[..., :3] // scale).astype(np.int64).reshape(-1, 3)
        grey = (rgb[:, 0] == rgb[:, 1]) & (rgb[:, 1] == rgb[:, 2])
        grey_pixels += int(grey.sum())
        uniques, counts = np.unique(rgb[~grey], axis=0, return_counts=True)
        colours.update({tuple(u): c for u, c in zip(uniques.tolist(), counts.tolist())})
    mask: dict
    if colours:
        if single_channel:
            raise DataError(f"{single_channel[0]}: a single-channel mask among colour-coded masks")
        if len(colours) > max_colours:
            raise DataError(
                f"{root}: masks hold {len(colours)} distinct colours (more than {max_colours}); "
                "they look like photographs rather than colour-coded masks"
            )
        ranked = [c for c, _ in colours.most_common()]
        table = {"matrix": OTHER_COLOUR} if grey_pixels else {}
        table |= {f"class_{i + 1}": format_colour(c) for i, c in enumerate(ranked)}
        mask = {"encoding": "colour"}
    else:
        if len(values) > 64:
            raise DataError(f"{root}: masks hold {len(values)} distinct values; not an index map of classes")
        table = {("matrix" if v == 0 else f"class_{v}"): v for v in sorted(values)}
        mask = {"encoding": "index"}
    if suffix:
        mask["suffix"] = suffix
    layout = splits["all"] if list(splits) == ["all"] else {"splits": splits}
    return {"name": root.name, "classes": table, "background": next(iter(table)), "mask": mask, **layout}


def write_description(folder: str | Path, out: str | Path | None = None, overwrite: bool = False) -> Path:
    """Run :func:`init_description` and save it as YAML (``FOLDER/dataset.yaml`` by default)."""
    from csunet.utils import atomic_write_text

    data = init_description(folder)
    out = Path(out) if out else Path(folder) / DESCRIPTION_FILE
    if out.exists() and not overwrite:
        raise DataError(f"{out}: already exists (pass --overwrite to replace it)")
    header = (
        "# Written by `csunet data init` from the masks it found. Rename the classes in the table below (name:\n"
        "# mask value); their order is the model's output channel order. `background` is the matrix class: left\n"
        "# out of the mean IoU without background, measured as the matrix, unpainted in overlays (null: none).\n"
        "# Add pixel_size_um (micrometres per pixel) if you know it.\n"
    )
    root = os.path.relpath(Path(folder).resolve(), out.resolve().parent)
    if root != ".":
        data = {"root": root, **data}
    text = header + yaml.safe_dump(data, sort_keys=False)
    DatasetDescription.from_dict(yaml.safe_load(text), base=out.resolve().parent, source=out)  # must load back
    atomic_write_text(out, text)
    return out

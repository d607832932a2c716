"""NASA's seven MicroNet benchmark tasks (Super-1..4, EBC-1..3), built in by name.

``super-N`` is the 3-class task (matrix, secondary, tertiary) and ``super-N-binary`` precipitate vs matrix;
``ebc-N`` is the benchmark's binary task (oxide = index 1 or 2) and ``ebc-N-3class`` keeps cracks apart.
The benchmark folder comes from ``data_root`` or the ``CSUNET_DATA`` environment variable.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from csunet.data.description import DatasetDescription, SplitFolders
from csunet.data.errors import DataError
from csunet.data.masks import ColourEncoding, IndexEncoding

DATA_ENV = "CSUNET_DATA"
BLUE, RED = (0, 0, 255), (255, 0, 0)
SUPER_COLOURS = [(40, 40, 40), (0, 114, 255), (255, 40, 40)]
EBC_COLOURS = [(0, 0, 0), (255, 200, 0), (255, 0, 255)]

_TASK_RE = re.compile(r"^(super|ebc)-([1-4])(-binary|-3class)?$")
_SPLITS = {
    "super": {
        1: ["train", "val", "test"],
        2: ["train", "val", "test", "different_test"],
        3: ["train", "val", "test", "different_test"],
        4: ["train", "val", "test"],
    },
    "ebc": {1: ["train", "val", "test"], 2: ["train", "val", "test"], 3: ["train", "val", "test"]},
}


def list_tasks() -> list[str]:
    names = []
    for family, variant in (("super", "-binary"), ("ebc", "-3class")):
        for number in _SPLITS[family]:
            names += [f"{family}-{number}", f"{family}-{number}{variant}"]
    return names


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    if data_root is None:
        data_root = os.environ.get(DATA_ENV)
    if data_root is None:
        raise DataError(
            f"the NASA benchmark folder is not known: pass --data-root or set {DATA_ENV} "
            "(the folder holding Super1..4 and EBC1..3)"
        )
    root = Path(data_root)
    if not root.is_dir():
        raise DataError(f"{root}: benchmark folder does not exist")
    return root


def is_task_name(name: str) -> bool:
    return bool(_TASK_RE.match(name.lower()))


def super_description(folder: Path, name: str, binary: bool = False, splits: list[str] | None = None):
    """A Super-style folder: colour overlays where pure blue = secondary, pure red = tertiary, rest = matrix."""
    splits = splits or ["train", "val", "test"]
    if binary:
        classes, colours, display = ["matrix", "precipitate"], {BLUE: 1, RED: 1}, SUPER_COLOURS[:2]
    else:
        classes, colours, display = ["matrix", "secondary", "tertiary"], {BLUE: 1, RED: 2}, SUPER_COLOURS
    return DatasetDescription(
        name=name,
        classes=classes,
        encoding=ColourEncoding(colours=colours, default=0),
        splits={s: SplitFolders(folder / s, folder / f"{s}_annot") for s in splits},
        mask_suffix="_mask",
        class_colours=list(display),
    )


def get_task(name: str, data_root: str | os.PathLike | None = None) -> DatasetDescription:
    """The description of a built-in benchmark task, e.g. ``get_task("ebc-1", "../shared/data/micronet_benchmark")``."""
    match = _TASK_RE.match(name.lower())
    if not match or int(match.group(2)) not in _SPLITS[match.group(1)]:
        raise DataError(f"unknown task {name!r}; built-in tasks: {', '.join(list_tasks())}")
    family, number, variant = match.group(1), int(match.group(2)), match.group(3)
    root = resolve_data_root(data_root)
    splits = _SPLITS[family][number]
    if family == "super":
        if variant == "-3class":
            raise DataError(f"unknown task {name!r}: Super tasks are 3-class already (use super-{number})")
        return super_description(root / f"Super{number}", name.lower(), variant == "-binary", splits)
    if variant == "-binary":
        raise DataError(f"unknown task {name!r}: EBC tasks are binary already (use ebc-{number})")
    folder = root / f"EBC{number}"
    if variant == "-3class":
        classes, encoding, display = (
            ["background", "oxide", "crack"],
            IndexEncoding({0: 0, 1: 1, 2: 2}),
            EBC_COLOURS,
        )
    else:
        classes, encoding, display = (
            ["background", "oxide"],
            IndexEncoding({0: 0, 1: 1, 2: 1}),
            EBC_COLOURS[:2],
        )
    return DatasetDescription(
        name=name.lower(),
        classes=classes,
        encoding=encoding,
        splits={s: SplitFolders(folder / s, folder / f"{s}_annot") for s in splits},
        class_colours=list(display),
    )

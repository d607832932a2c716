"""The layout of a folder of predictions, shared by the verb that writes it (`predict`) and those that read it
(`measure`, `report`): file names, and ``predictions.json``, which lists what was written with the classes,
colours and pixel size."""

from __future__ import annotations

import json
import os
from pathlib import Path

from csunet.data.errors import DataError
from csunet.utils import atomic_write_text

PREDICTIONS_MANIFEST = "predictions.json"
MASK_SUFFIX = "_mask"


def manifest_path(folder: str | os.PathLike) -> Path:
    return Path(folder) / PREDICTIONS_MANIFEST


def read_manifest(folder: str | os.PathLike) -> dict:
    """``predictions.json`` of ``folder``; an empty dict when there is none."""
    path = manifest_path(folder)
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable predictions manifest ({exc})") from None


def write_manifest(folder: str | os.PathLike, manifest: dict) -> None:
    atomic_write_text(manifest_path(folder), json.dumps(manifest, indent=2) + "\n")

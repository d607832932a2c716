"""The layout of a folder of predictions, shared by the verb that writes it (`predict`) and those that read it
(`measure`, `report`): file names, and ``predictions.json``, which lists what was written with the classes,
colours and pixel size."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from csunet.data.errors import DataError
from csunet.utils import atomic_write_text

PREDICTIONS_MANIFEST = "predictions.json"
MASK_SUFFIX = "_mask"


def manifest_path(folder: str | os.PathLike) -> Path:
    return Path(folder) / PREDICTIONS_MANIFEST


MANIFEST_GLOB = "predictions*.json"
"""``predictions.json`` and the lists of the shards of a sharded run."""


def shard_manifest_name(index: int, count: int) -> str:
    """The list one shard of a run writes (``predictions.json`` when the run is not sharded)."""
    return PREDICTIONS_MANIFEST if count == 1 else f"predictions.shard-{index}-of-{count}.json"


def done_log_name(index: int, count: int) -> str:
    """The append-only record of the images a run (or shard) finished, one JSON line each: what a rerun skips."""
    return shard_manifest_name(index, count).removesuffix(".json") + ".done.jsonl"


def read_done_log(path: Path) -> list[dict]:
    """The records of a done log; a last line cut short by a crash is left out (that image is redone)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def read_manifest(folder: str | os.PathLike) -> dict:
    """``predictions.json`` of ``folder``; an empty dict when there is none."""
    return read_manifest_file(manifest_path(folder))


def read_manifest_file(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable predictions manifest ({exc})") from None


def write_manifest(folder: str | os.PathLike, manifest: dict, name: str = PREDICTIONS_MANIFEST) -> None:
    atomic_write_text(Path(folder) / name, json.dumps(manifest, indent=2) + "\n")


def clear_earlier_run(folder: Path, output_keys: tuple[str, ...]) -> list[Path]:
    """Delete what an earlier prediction run in ``folder`` listed (its outputs, lists and done logs), and nothing
    else: ``--overwrite`` replaces a run, not the folder's other files. The files deleted."""
    folder = Path(folder).resolve()
    lists = sorted(folder.glob(MANIFEST_GLOB)) + sorted(folder.glob("predictions*.done.jsonl"))
    records = [r for path in lists if path.suffix == ".json" for r in read_manifest_file(path).get("images", [])]
    records += [r for path in lists if path.suffix == ".jsonl" for r in read_done_log(path)]
    listed = {Path(r[key]).resolve() for r in records for key in output_keys if isinstance(r.get(key), str)}
    removed = [path for path in sorted(listed) if path.parent == folder and path.exists()] + lists
    for path in removed:
        if path.is_dir():  # an OME-Zarr
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    return removed

"""A folder of predictions: its layout, shared by the verb that writes it (`predict`) and those that read it
(`measure`, `report`): file names, and ``predictions.json``, which lists what was written with the classes,
colours and pixel size; and the bookkeeping of a run that writes it (:class:`FolderRun`: the lists, the done log
that lets a rerun continue, shards merged; :func:`finished_records`: what a rerun skips, and folders refused).
`predict` itself only reads images, runs the predictor and writes each image's files."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
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


def finished_records(out: Path, settings: dict, images: list[Path], shard: tuple[int, int]) -> dict[str, dict]:
    """Records of the images an earlier run of the same command finished in ``out`` (by image path), after
    refusing a folder that holds outputs of other images or of other settings."""
    manifests = {path.name: read_manifest_file(path) for path in sorted(out.glob(MANIFEST_GLOB))}
    for name, manifest in manifests.items():
        if manifest.get("settings") != settings:
            raise DataError(
                f"{out} already holds the outputs of an earlier prediction run with other settings ({name}: "
                f"{differences(manifest.get('settings') or {}, settings)}); choose another --out, or --overwrite "
                "to replace them"
            )
    stems = {path.stem for path in images}
    foreign = sorted(p.name for p in out.iterdir() if p.stem.endswith(MASK_SUFFIX)
                     and p.stem[: -len(MASK_SUFFIX)] not in stems)  # fmt: skip
    if foreign:
        listed = f"{', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}"
        raise DataError(
            f"{out} already holds the outputs of an earlier prediction run ({len(foreign)} masks of other images: "
            f"{listed}); choose another --out, or --overwrite to replace them"
        )
    return {
        record["image"]: record
        for record in read_done_log(out / done_log_name(*shard))
        if all(Path(record[key]).exists() for key in OUTPUT_KEYS if key in record)
    }


OUTPUT_KEYS = ("mask", "overlay", "probabilities", "uncertainty", "roi", "geojson", "ome_zarr")
MANIFEST_SECONDS = 10.0
"""``predictions.json`` is rewritten at most this often while a run goes on (the done log has every image at once):
rewriting it after every image would cost time growing with the square of the folder's size."""


def differences(old: dict, new: dict) -> str:
    changed = [key for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    return ", ".join(f"{key} {old.get(key)!r} now {new.get(key)!r}" for key in changed) or "none recorded"


def merge_shards(out: Path, count: int, images: list[Path]) -> None:
    """``predictions.json`` from the N shard lists once every shard is complete (the last shard to finish does it;
    two finishing at once write the same file)."""
    shards = [read_manifest_file(out / shard_manifest_name(k, count)) for k in range(1, count + 1)]
    if not all(shard.get("complete") for shard in shards):
        return
    order = {str(path): position for position, path in enumerate(images)}
    records = sorted((r for shard in shards for r in shard["images"]), key=lambda r: order.get(r["image"], 0))
    merged = {key: value for key, value in shards[0].items() if key != "shard"}
    merged.update(inputs=sum(shard["inputs"] for shard in shards), images=records, shards=count, complete=True)
    write_manifest(out, merged)


class FolderRun:
    """The bookkeeping of one prediction run (or shard) in its folder: its list (``predictions.json``, or the
    shard's), written before any work so that an unwritable folder fails at once, again at most every
    ``MANIFEST_SECONDS`` while images finish, and marked complete at the end; the done log, one line per finished
    image once all its files are written, which lets the same command continue; and, for a shard, the merge of the
    shard lists once every shard is complete. ``on_image`` is called once per image newly done (progress)."""

    def __init__(self, out: Path, manifest: dict, shard: tuple[int, int], overwrite: bool,
                 on_image: Callable[[], None] = lambda: None) -> None:  # fmt: skip
        self.out, self.manifest, self.shard, self.on_image = out, manifest, shard, on_image
        self.name = shard_manifest_name(*shard)
        write_manifest(out, manifest, self.name)
        self.log = open(out / done_log_name(*shard), "w" if overwrite else "a")  # noqa: SIM115  (closed on exit)
        self.last_written = time.monotonic()

    def __enter__(self) -> FolderRun:
        return self

    def __exit__(self, *exc) -> None:
        self.log.close()

    def record(self, record: dict, new: bool) -> None:
        """One image, in input order: done by this run (``new``, after its files are written) or an earlier one."""
        self.manifest["images"].append(record)
        if not new:
            return
        if "error" not in record:  # an image counts as done once its line is written
            self.log.write(json.dumps(record) + "\n")
            self.log.flush()
        if time.monotonic() - self.last_written > MANIFEST_SECONDS:
            write_manifest(self.out, self.manifest, self.name)
            self.last_written = time.monotonic()
        self.on_image()

    def complete(self, images: list[Path]) -> None:
        """Every image of the run recorded: the list says so; the last shard to finish merges all of them."""
        self.manifest["complete"] = True
        write_manifest(self.out, self.manifest, self.name)
        if self.shard[1] > 1:
            merge_shards(self.out, self.shard[1], images)

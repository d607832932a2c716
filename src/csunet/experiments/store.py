"""The results database: one SQLite row per run (stdlib ``sqlite3``), safe to copy between machines and merge."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from csunet.errors import ResultsStoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    grid TEXT, task TEXT, model TEXT, encoder TEXT, depths TEXT, variant TEXT, weights TEXT,
    config TEXT NOT NULL,
    status TEXT NOT NULL,            -- running | finished | failed
    nasa_iou REAL, miou REAL, per_class TEXT,
    epochs INTEGER, wall_seconds REAL, machine TEXT, run_dir TEXT, checkpoint TEXT,
    error TEXT, updated TEXT DEFAULT CURRENT_TIMESTAMP
)
"""
COLUMNS = ("id", "grid", "task", "model", "encoder", "depths", "variant", "weights", "config", "status", "nasa_iou",
           "miou", "per_class", "epochs", "wall_seconds", "machine", "run_dir", "checkpoint", "error")  # fmt: skip


def connect(path: str | Path, read_only: bool = False) -> sqlite3.Connection:
    """The results database at ``path``: created when missing, or with ``read_only`` opened as SQLite's read-only
    mode (a reader never writes: another SQLite file is left as it was); a file that is not one of ours is refused
    by name."""
    if read_only and not Path(path).is_file():
        raise ResultsStoreError(f"{path}: no such results database")
    try:
        if read_only:
            connection = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=60)
        else:
            connection = sqlite3.connect(str(path), timeout=60)
        connection.row_factory = sqlite3.Row
        if not read_only:
            connection.execute(SCHEMA)
        found = {row["name"] for row in connection.execute("PRAGMA table_info(runs)")}
    except sqlite3.Error as exc:
        raise ResultsStoreError(f"{path}: not a readable results database ({exc})") from None
    if not found:
        raise ResultsStoreError(f"{path}: has no runs table; not a csunet results database")
    missing = [column for column in COLUMNS if column not in found]
    if missing:
        raise ResultsStoreError(
            f"{path}: its runs table lacks {', '.join(missing)}; not a csunet results database"
        )
    return connection


def save(connection: sqlite3.Connection, row: dict) -> None:
    """Insert or replace one run (each write is its own transaction: an interruption loses nothing committed)."""
    values = {c: row.get(c) for c in COLUMNS}
    for key in ("config", "per_class"):
        if values[key] is not None and not isinstance(values[key], str):
            values[key] = json.dumps(values[key], sort_keys=True, default=str)
    with connection:
        connection.execute(
            f"INSERT OR REPLACE INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
            [values[c] for c in COLUMNS],
        )


def status_of(connection: sqlite3.Connection, run_id: str) -> str | None:
    found = connection.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    return found["status"] if found else None


def rows(connection: sqlite3.Connection, status: str | None = "finished") -> list[dict]:
    query = "SELECT * FROM runs" + (" WHERE status = ?" if status else "")
    out = []
    for row in connection.execute(query, (status,) if status else ()):
        item = dict(row)
        item["per_class"] = json.loads(item["per_class"]) if item["per_class"] else {}
        out.append(item)
    return out


def merge(sources: list[str | Path], target: str | Path) -> dict:
    """Copy every run of ``sources`` into ``target``; a finished run wins over a failed or running one.

    Databases of different grids are refused (their run ids would mix in one table). Two finished rows of one id
    with different results are conflicts: the row already in ``target`` stays and the conflict is reported.
    Returns counts: ``added``, ``replaced`` (a better status won), ``unchanged``, ``runs`` (in ``target`` after),
    and the ``conflicts``.
    """
    rank = {"finished": 2, "failed": 1, "running": 0}
    incoming = {str(source): rows(connect(source, read_only=True), status=None) for source in sources}
    # everything is checked before the target is opened for writing: a refused merge creates nothing
    exists = Path(target).is_file() and Path(target).stat().st_size > 0
    existing = rows(connect(target, read_only=True), status=None) if exists else []
    grids = {row["grid"]: str(target) for row in existing if row["grid"]}
    for source, found in incoming.items():
        grids |= {row["grid"]: source for row in found if row["grid"] and row["grid"] not in grids}
    if len(grids) > 1:
        raise ResultsStoreError(
            "these databases hold runs of different grids: "
            + ", ".join(f"{grid} ({where})" for grid, where in sorted(grids.items()))
            + "; merge each grid into its own database"
        )
    counts: dict = {"added": 0, "replaced": 0, "unchanged": 0, "conflicts": []}
    destination = connect(target)
    for source, found in incoming.items():
        for row in found:
            current = destination.execute("SELECT * FROM runs WHERE id = ?", (row["id"],)).fetchone()
            if current is None:
                counts["added"] += 1
            elif current["status"] == row["status"] == "finished":
                if current["nasa_iou"] != row["nasa_iou"]:
                    counts["conflicts"].append(
                        f"run {row['id']}: NASA IoU {current['nasa_iou']} kept, {row['nasa_iou']} in {source} not"
                    )
                else:
                    counts["unchanged"] += 1
                continue
            elif rank.get(row["status"], 0) > rank.get(current["status"], 0):
                counts["replaced"] += 1
            else:
                counts["unchanged"] += 1
                continue
            save(destination, row)
    counts["runs"] = destination.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    return counts

"""The results database: one SQLite row per run (stdlib ``sqlite3``), safe to copy between machines and merge."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

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


def connect(path: str | Path) -> sqlite3.Connection:
    connection = sqlite3.connect(str(path), timeout=60)
    connection.row_factory = sqlite3.Row
    connection.execute(SCHEMA)
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


def merge(sources: list[str | Path], target: str | Path) -> int:
    """Copy every run of ``sources`` into ``target``; a finished run wins over a failed or running one."""
    rank = {"finished": 2, "failed": 1, "running": 0}
    destination = connect(target)
    count = 0
    for source in sources:
        for row in rows(connect(source), status=None):
            current = status_of(destination, row["id"])
            if current is None or rank.get(row["status"], 0) >= rank.get(current, 0):
                save(destination, row)
                count += 1
    return count

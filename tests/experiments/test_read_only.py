"""Verbs that read a results database never write to it, and a refused merge leaves nothing behind."""

import sqlite3

import pytest

from csunet.errors import ResultsStoreError
from csunet.experiments.store import connect, merge, rows, save


def test_reading_another_sqlite_file_leaves_it_as_it_was(tmp_path):
    other = tmp_path / "notes.sqlite"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
    before = other.read_bytes()
    with pytest.raises(ResultsStoreError, match="notes.sqlite: has no runs table; not a csunet results database"):
        connect(other, read_only=True)
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with pytest.raises(ResultsStoreError, match="empty.sqlite: has no runs table"):
        connect(empty, read_only=True)
    assert other.read_bytes() == before and empty.read_bytes() == b""
    with pytest.raises(ResultsStoreError, match="no such results database"):
        connect(tmp_path / "none.sqlite", read_only=True)
    assert not (tmp_path / "none.sqlite").exists()


def test_a_read_only_connection_cannot_write_and_a_refused_merge_creates_nothing(tmp_path):
    first, second = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    for path, grid in ((first, "g1"), (second, "g2")):
        save(connect(path), {"id": f"run-{grid}", "grid": grid, "config": {}, "status": "finished"})
    reader = connect(first, read_only=True)
    assert [row["id"] for row in rows(reader)] == ["run-g1"]
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        save(reader, {"id": "x", "config": {}, "status": "failed"})
    target = tmp_path / "merged.sqlite"
    with pytest.raises(ResultsStoreError, match="different grids"):
        merge([first, second], target)
    assert not target.exists()
    assert merge([first], target)["added"] == 1

"""The manifest of a prepared collection: one row per written image (file, source, position, augmentation, class).

Kept as ``manifest.csv`` beside the images; its SHA-256 identifies the data a pretraining run saw.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

from csunet.utils import atomic_write_text

COLUMNS = ["file", "source", "class", "top", "left", "height", "width", "step"]
MANIFEST = "manifest.csv"


def write_manifest(folder: Path, rows: list[dict]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    path = Path(folder) / MANIFEST
    atomic_write_text(path, buffer.getvalue())
    return path


def read_manifest(folder: Path) -> list[dict]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def manifest_sha256(folder: Path) -> str | None:
    path = Path(folder) / MANIFEST
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None

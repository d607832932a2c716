"""The weights cache: catalogued files fetched (checksum recorded and verified on every use) or imported."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from csunet.weights.catalog import WeightSource, all_sources, find_source
from csunet.weights.files import (
    WeightsError,
    checksum_file,
    download,
    read_state_dict,
    sha256_of,
    verify_cached,
    weights_cache,
)


def cached_path(source: WeightSource) -> Path:
    return weights_cache() / source.filename


def fetch(name: str, progress: bool = True, url: str | None = None) -> Path:
    """The cached file of a published weight (``resnet50.micronet``, ``swin_t.imagenet``), downloading if needed."""
    source = find_source(name)
    path = cached_path(source)
    if path.exists():
        verify_cached(path, source.sha256)
        return path
    return download(url or source.url, path, source.sha256, progress)


def import_file(path: str | os.PathLike, name: str) -> Path:
    """Put a weight file fetched elsewhere into the cache under a catalogue name, after checking it loads safely."""
    source = find_source(name)
    path = Path(path)
    state = read_state_dict(path)
    if not state:
        raise WeightsError(f"{path}: holds no tensors")
    destination = cached_path(source)
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(destination.name + ".part")
    shutil.copyfile(path, temporary)
    os.replace(temporary, destination)
    checksum_file(destination).write_text(sha256_of(destination) + "\n")
    return destination


def list_weights() -> list[dict]:
    """Every catalogued weight file with its URL and whether (and where) it is cached."""
    rows = []
    for source in all_sources():
        path = cached_path(source)
        rows.append(
            {
                "name": source.name,
                "kind": source.kind,
                "url": source.url,
                "cached": path.exists(),
                "path": str(path) if path.exists() else None,
            }
        )
    return rows


def resolve(spec: str | os.PathLike, progress: bool = True) -> Path:
    """A local file path as is; otherwise a catalogue name, fetched into the cache."""
    path = Path(spec)
    return path if path.is_file() else fetch(str(spec), progress)

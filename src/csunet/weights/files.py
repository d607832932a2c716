"""Reading checkpoint files safely, and downloading them into the cache with a progress bar and a checksum."""

from __future__ import annotations

import _compat_pickle
import hashlib
import os
import pickle
import pickletools
import urllib.request
import zipfile
from pathlib import Path

import torch

from csunet.errors import CsunetError
from csunet.utils import cache_dir


class WeightsError(CsunetError, RuntimeError):
    """A checkpoint that cannot be used (the message says which file and why)."""


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file: safetensors, or a torch file read with ``weights_only=True``.

    Wrappers used by training scripts (``{'model': ...}``, ``{'state_dict': ...}``) are unwrapped; a file whose
    unpickling would run code is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: checkpoint file does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from exc
    data = load_without_running_code(
        path,
        WeightsError,
        "Re-save its state dict with torch.save(model.state_dict(), ...) or as safetensors in an environment you "
        "trust.",
    )
    return unwrap_state_dict(data, path)


def load_without_running_code(path: Path, error: type[Exception], fix: str):
    """``torch.load(weights_only=True)`` with every failure as ``error`` naming the file: empty, corrupt or
    truncated, or refused for holding pickled code (torch's own advice, to load it with ``weights_only=False``,
    is never repeated); ``fix`` says what to do about a refused file. Which it was is read from the file's own
    pickle (the globals it names), not from torch's wording, which changes between versions."""
    if path.stat().st_size == 0:
        raise error(f"{path}: an empty file (0 bytes), not a checkpoint; was its copy or download cut short?")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError) as exc:
        foreign = pickled_globals(path) - SAFE_GLOBALS
        if foreign:
            raise error(
                f"{path}: refused: it holds pickled Python objects ({', '.join(sorted(foreign))}) that would run "
                f"code when loaded, and csunet never runs code from a file. {fix}"
            ) from None
        raise error(
            f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}; corrupt or truncated)"
        ) from None


SAFE_GLOBALS = {"collections.OrderedDict", "_codecs.encode", "builtins.set", "builtins.frozenset",
                "builtins.bytearray", "builtins.complex", "builtins.slice", "builtins.range"}  # fmt: skip
"""Globals a weights-only checkpoint may name besides torch's own (``torch.*``)."""


def pickled_globals(path: Path) -> set[str]:
    """The ``module.name`` globals that the pickle in ``path`` (a torch zip checkpoint's ``data.pkl``, or a plain
    pickle) would import, torch's own left out; as far as the pickle can be read."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                member = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                data = archive.read(member) if member else b""
        else:
            data = path.read_bytes()
    except (OSError, zipfile.BadZipFile, KeyError):
        return set()
    found, strings = set(), []
    try:
        for opcode, argument, _ in pickletools.genops(data):
            if opcode.name == "GLOBAL":
                found.add(str(argument).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.add(f"{strings[-2]}.{strings[-1]}")
            if isinstance(argument, str):
                strings.append(argument)
    except (ValueError, IndexError, EOFError, pickle.UnpicklingError):
        pass  # a truncated or foreign file: what was read so far
    return {python3_name(name) for name in found if not name.startswith("torch")}


def python3_name(qualified: str) -> str:
    """A global as Python 3 names it (pickle protocols 0-2 write Python 2's: ``__builtin__.eval``)."""
    module, _, name = qualified.rpartition(".")
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    return f"{_compat_pickle.IMPORT_MAPPING.get(module, module)}.{name}"


def unwrap_state_dict(data, source: str | os.PathLike = "<checkpoint>") -> dict[str, torch.Tensor]:
    for key in ("model", "state_dict", "model_state", "module"):
        if isinstance(data, dict) and key in data and isinstance(data[key], dict):
            data = data[key]
            break
    if not isinstance(data, dict) or not data:
        raise WeightsError(f"{source}: no state dict found (expected a mapping of names to tensors)")
    tensors = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsError(f"{source}: the mapping holds no tensors")
    return tensors


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def weights_cache() -> Path:
    return cache_dir() / "weights"


def download(url: str, destination: Path, sha256: str | None = None, progress: bool = True) -> Path:
    """Fetch ``url`` into ``destination`` (atomically), checking ``sha256`` when given.

    Without a published checksum the file's SHA-256 is written beside it (``.sha256``) on first download and
    checked on every later use, so a corrupted or swapped cache file is caught.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

            with Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                disable=not progress,
                transient=True,
            ) as bar:
                task = bar.add_task(f"downloading {destination.name}", total=total)
                while block := response.read(1 << 20):
                    out.write(block)
                    digest.update(block)
                    bar.update(task, advance=len(block))
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise WeightsError(
            f"{url}: download failed ({exc}); fetch it elsewhere and use `csunet weights import`"
        ) from exc
    actual = digest.hexdigest()
    if sha256 and actual != sha256.lower():
        partial.unlink(missing_ok=True)
        raise WeightsError(
            f"{url}: checksum mismatch: expected sha256 {sha256}, got {actual}; the file was discarded"
        )
    os.replace(partial, destination)
    checksum_file(destination).write_text(actual + "\n")
    return destination


def checksum_file(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def verify_cached(path: Path, sha256: str | None = None) -> None:
    """Check a cached file against the expected checksum, or the one recorded when it was fetched."""
    expected = sha256 or (checksum_file(path).read_text().strip() if checksum_file(path).exists() else None)
    if expected is None:
        return
    actual = sha256_of(path)
    if actual != expected.lower():
        raise WeightsError(
            f"{path}: cached file is corrupt or was replaced (sha256 {actual}, expected {expected}); delete it and fetch again"
        )

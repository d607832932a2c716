"""Small helpers shared across the package."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from csunet.errors import CsunetError, OutputError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it into place, so a crash never leaves half a file."""
    path = writable_file(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def writable_folder(path: str | os.PathLike, what: str = "output folder") -> Path:
    """``path`` as a folder that exists and takes files (made if missing); a clear error naming it otherwise, before
    any work is done that would be lost."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".csunet-write-test-"):
            pass
    except OSError as exc:
        problem = "it is a file" if path.is_file() else (exc.strerror or type(exc).__name__).lower()
        raise OutputError(f"{path}: cannot write the {what} there ({problem}); choose another") from None
    return path


def writable_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` as a file that can be written (its folder made if missing): a folder of that name, or a folder that
    cannot be made, is an error naming it, said before any work is done that would be lost."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: a folder, where the {what} should be written as a file; name a file")
    writable_folder(path.parent, f"{what}'s folder")
    return path


@contextmanager
def removed_if_left_empty(folder: str | os.PathLike) -> Iterator[Path]:
    """Around work that makes ``folder``: when the work fails before writing anything there, the empty folder it
    made is removed again, so a refused command leaves nothing behind."""
    folder = Path(folder)
    made = not folder.exists()
    try:
        yield folder
    except BaseException:
        if made and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside ``path`` to fill; on success it replaces ``path`` (a folder written earlier goes),
    on failure it is removed: readers never see half a folder (an OME-Zarr, an unpacked bundle)."""
    import shutil
    import uuid

    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temporary.mkdir(parents=True)
        yield temporary
        if path.exists():
            shutil.rmtree(path)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


CACHE_ENV = "CSUNET_CACHE"


def cache_dir() -> Path:
    """Where downloaded weights are kept: ``$CSUNET_CACHE``, else ``$XDG_CACHE_HOME/csunet``, else ``~/.cache/csunet``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "csunet"


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of handing it back to the kernel.

    PyTorch on the CPU frees and re-allocates the same large activation buffers every step; by default glibc
    serves each from a fresh ``mmap`` whose pages fault in again, which made CS-UNet training steps 1.35x slower
    on our 2-core machine (``benchmarks/speed.py``). The cost: the process keeps its peak memory until it exits.
    Returns whether the setting took (False off glibc, e.g. on macOS or Windows).
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # glibc's malloc.h
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 1 << 30))


class _StrictLoader(yaml.SafeLoader):
    """yaml's safe loader, refusing a key given twice in one mapping (yaml keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice (lines {seen[key]} and {key_node.start_mark.line + 1})",
                    key_node.start_mark,
                )  # fmt: skip
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def read_yaml(path: str | os.PathLike, error: type[CsunetError]):
    """The YAML document in ``path`` (safe loading), or ``error`` naming the file and what is wrong: not UTF-8
    text (where), not YAML, a key given twice."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise error(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); save it as UTF-8"
        ) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({exc})") from None

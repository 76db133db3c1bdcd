"""Crash-safe writes: write ``name.tmp``, flush, fsync, then ``os.replace`` onto the final name.

A reader therefore sees either the old complete file or the new complete file, never half of one.
A full disk is reported as ``DiskFullError`` so callers can stop cleanly and keep what they wrote.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path


def _process_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once: os.umask can only be read by setting it, which is not thread-safe later on.
_UMASK = _process_umask()


class DiskFullError(OSError):
    """The disk (or quota) is full: stop writing, keep what was written."""


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path, *, sync_dir: bool = True, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` through (for writers that take a file name).

    On success the file is fsynced and renamed onto ``path``; on failure it is removed.
    ``keep_suffix`` names it ``.stem.tmp.suffix`` for writers that pick the format by suffix.
    ``sync_dir=False`` leaves the directory fsync to the caller (one per batch of files).
    """
    path = Path(path)
    name = f".{path.stem}.tmp{path.suffix}" if keep_suffix else path.name + ".tmp"
    tmp = path.with_name(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        # Some writers (safetensors) create 0600 files; a result is readable as the umask says.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError(exc.errno, f"disk full while writing {path}") from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)
    if sync_dir:
        fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    with atomic_path(path, sync_dir=sync_dir) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))

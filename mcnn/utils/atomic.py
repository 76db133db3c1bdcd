"""Crash-safe writes: write ``name.tmp``, flush, fsync, then ``os.replace`` onto the final name.

A reader therefore sees either the old complete file or the new complete file, never half of one.
A full disk is reported as ``DiskFullError`` so callers can stop cleanly and keep what they wrote.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


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


def atomic_write_bytes(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    """``sync_dir=False`` leaves the directory fsync to the caller (one per batch of files)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise DiskFullError(exc.errno, f"disk full while writing {path}") from exc
        raise
    if sync_dir:
        fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))

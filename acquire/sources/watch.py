"""``FolderWatcher``: the files a microscope finishes writing into one folder, each handed out once.

A file is taken only once complete: not a temporary name (``.tmp``, ``.part``, ``.partial``,
``.crdownload``, ``.lock``, ``~`` or ``.`` prefixes), non-empty, with the same size and mtime over
two polls in a row, and accepted by the caller's ``accept(path)`` (which reads it, e.g. to its last
frame, and raises if it cannot). A file that still fails is retried on later polls and skipped
(logged, listed in ``skipped``) after ``max_retries``. One watcher serves the frame-series source
of the live viewers and ``stem-denoise --watch``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from acquire.sources.base import SourceError

logger = logging.getLogger(__name__)

TEMP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".lock")


def is_temporary(path: Path) -> bool:
    """Names a writer uses before the file is complete."""
    name = path.name.lower()
    return name.startswith((".", "~")) or name.endswith(TEMP_SUFFIXES)


class FolderWatcher:
    """New complete image files in ``folder``, in name order; ``existing=False`` ignores the
    files already there when the watcher is made."""

    def __init__(self, folder: str | Path, *, accept: Callable[[Path], object],
                 existing: bool = True, max_retries: int = 5) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise SourceError(f"{self.folder}: no such folder to watch")
        self.accept, self.max_retries = accept, max_retries
        self.skipped: list[str] = []
        self._seen: set[Path] = set()  # taken, skipped, or there before (existing=False)
        self._sizes: dict[Path, tuple[int, int]] = {}  # (size, mtime) at the last poll
        self._failures: dict[Path, int] = {}
        if not existing:
            self._seen = set(self.candidates())

    @property
    def pending(self) -> int:
        """Files seen but not yet taken: still being written, or to be retried."""
        return len(self._sizes)

    def candidates(self) -> list[Path]:
        """Image files in the folder (by registered suffix), temporary names left out."""
        from mcnn.data.image_io import image_suffixes

        suffixes = set(image_suffixes())
        try:
            return sorted(p for p in self.folder.iterdir()
                          if p.is_file() and p.suffix.lower() in suffixes and not is_temporary(p))
        except FileNotFoundError:
            raise SourceError(f"{self.folder}: the watched folder is gone") from None

    def poll(self) -> list[Path]:
        """One look at the folder: the files that became complete and were accepted."""
        taken = []
        for path in self.candidates():
            if path in self._seen:
                continue
            try:
                st = path.stat()
            except FileNotFoundError:  # renamed or removed between listing and stat
                continue
            sig = (st.st_size, st.st_mtime_ns)
            if self._sizes.get(path) != sig or st.st_size == 0:
                self._sizes[path] = sig  # new or still changing: look again next poll
                continue
            try:
                self.accept(path)
            except (ValueError, OSError, IndexError) as exc:  # ImageFileError is a ValueError
                n = self._failures[path] = self._failures.get(path, 0) + 1
                self._sizes.pop(path, None)
                if n >= self.max_retries:
                    logger.warning("%s: skipped (%s)", path, exc)
                    self.skipped.append(str(exc) or f"{path}: no frames")
                    self._seen.add(path)
                continue
            self._seen.add(path)
            self._sizes.pop(path, None)
            taken.append(path)
        return taken

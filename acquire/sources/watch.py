"""``FolderWatcher``: the files a microscope finishes writing into one folder, each handed out once.

A file is taken only once complete: not a temporary name (``.tmp``, ``.part``, ``.partial``,
``.crdownload``, ``.lock``, ``~`` or ``.`` prefixes), non-empty, with the same size and mtime over
two polls in a row, and accepted by the caller's ``accept(path)`` (which reads it, e.g. to its last
frame, and raises if it cannot). A file that still fails is retried on later polls and skipped
(logged, listed in ``skipped``) after ``max_retries``. A file taken that changes afterwards (a TIA
``.ser`` series grows frame by frame, with pauses longer than two polls) is handed out again once
it is complete again: the caller reads the frames it has not seen yet, or the whole file anew. One
watcher serves the frame-series source of the live viewers and ``stem-denoise --watch``.
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
        # skipped files: (size, mtime) when skipped, and the line in ``skipped``
        self._skipped_at: dict[Path, tuple[tuple[int, int], str]] = {}
        self._taken_at: dict[Path, tuple[int, int]] = {}  # (size, mtime) when handed out
        if not existing:
            self._seen = set(self.candidates())

    @property
    def pending(self) -> int:
        """Files seen but not yet taken: still being written, or to be retried."""
        return len(self._sizes)

    def candidates(self) -> list[Path]:
        """Image files in the folder (by registered suffix), temporary names left out, and a TIA
        ``.emi`` left out when its ``.ser`` series are there (as ``list_images`` does)."""
        from mcnn.data.image_io import drop_tia_emi, image_suffixes

        suffixes = set(image_suffixes())
        try:
            return drop_tia_emi(sorted(
                p for p in self.folder.iterdir()
                if p.is_file() and p.suffix.lower() in suffixes and not is_temporary(p)))
        except FileNotFoundError:
            raise SourceError(f"{self.folder}: the watched folder is gone") from None

    def poll(self) -> list[Path]:
        """One look at the folder: the files that became complete and were accepted."""
        taken = []
        listed = self.candidates()
        for gone in set(self._sizes) - set(listed):  # deleted or renamed before completing
            self._sizes.pop(gone, None)
            self._failures.pop(gone, None)
        for path in listed:
            try:
                st = path.stat()
            except FileNotFoundError:  # renamed or removed between listing and stat
                continue
            sig = (st.st_size, st.st_mtime_ns)
            if path in self._seen:
                if path in self._skipped_at and self._skipped_at[path][0] != sig:
                    # a skipped file changed since: the writer was only slow; look at it again
                    self.skipped.remove(self._skipped_at.pop(path)[1])
                elif path in self._taken_at and self._taken_at[path] != sig:
                    del self._taken_at[path]  # grew after it was taken: hand it out again
                else:
                    continue
                self._seen.discard(path)
            if self._sizes.get(path) != sig:
                self._failures.pop(path, None)  # new or still growing: failures so far don't count
                self._sizes[path] = sig  # look again next poll
                continue
            try:
                if st.st_size == 0:
                    raise ValueError(f"{path}: empty file")
                self.accept(path)
            except Exception as exc:  # any reader error: retried, then skipped; never fatal
                n = self._failures[path] = self._failures.get(path, 0) + 1
                if n >= self.max_retries:
                    self._sizes.pop(path, None)
                    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    line = text if str(path) in text else f"{path}: {text}"
                    logger.warning("%s: skipped (%s)", path, text)
                    self.skipped.append(line)
                    self._seen.add(path)
                    self._skipped_at[path] = (sig, line)
                    self._failures.pop(path, None)
                continue
            self._seen.add(path)
            self._sizes.pop(path, None)
            self._failures.pop(path, None)
            self._taken_at[path] = sig
            taken.append(path)
        return taken

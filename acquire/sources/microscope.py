"""Microscope frames as sources: a finished file series, or a folder a microscope is writing into.

- :class:`FrameSeriesSource` replays files, folders and stacks (DM3/DM4, EMD, SER, MRC, HDF5, TIFF,
  NPY) in order, one frame per ``read``, lazily (``mcnn.data.series.FrameSeries``); it raises
  :class:`SourceExhausted` after the last frame.
- :class:`FolderWatchSource` yields each new frame as the microscope software writes files into a
  folder. A file is taken only once it is complete: names that are temporary (``.tmp``,
  ``.part``, ``.partial``, ``~`` or ``.`` prefixes) are ignored, and a file's size and mtime must be
  the same over two polls in a row. A file that still fails to read is retried on the next polls
  and skipped (logged, recorded in ``skipped``) after ``max_retries``.

Frames are ``(H, W, 1)`` in the stored dtype (microscope counts are often uint32 or float32, not
the camera's uint8/uint16); ``meta`` carries ``source_file``, ``index_in_file``, the pixel size
(``pixel_size_y``, ``pixel_size_x``, ``pixel_size_unit``) and the reader's metadata.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path
from typing import Any

from acquire.frame import Frame, stamp_now
from acquire.sources.base import SourceBase, SourceError, SourceExhausted

logger = logging.getLogger(__name__)

TEMP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".lock")


def _frame(series_frame: Any, index: int) -> Frame:
    meta = dict(series_frame.meta)
    ps = series_frame.pixel_size
    if ps is not None:
        meta.update(pixel_size_y=ps.y, pixel_size_x=ps.x, pixel_size_unit=ps.unit)
    t_mono, t_wall = stamp_now()
    return Frame(series_frame.image[..., None], t_mono, t_wall, index, meta)


class FrameSeriesSource(SourceBase):
    """Every frame of ``inputs`` in order, as fast as the caller reads."""

    def __init__(self, inputs: list[str | Path], name: str = "series") -> None:
        self.name = name
        self._inputs = inputs
        self._iter: Any = None
        self._count = 0

    def open(self) -> None:
        from mcnn.data.image_io import ImageFileError
        from mcnn.data.series import FrameSeries

        try:
            self._iter = iter(FrameSeries(self._inputs))
        except ImageFileError as exc:
            raise SourceError(str(exc)) from None
        self._count = 0

    def close(self) -> None:
        if self._iter is not None:
            self._iter.close()
            self._iter = None

    def read(self, timeout_s: float = 2.0) -> Frame:
        from mcnn.data.image_io import ImageFileError

        if self._iter is None:
            raise SourceError(f"{self.name} is not open")
        try:
            got = next(self._iter)
        except StopIteration:
            raise SourceExhausted(f"{self.name}: no more frames") from None
        except ImageFileError as exc:
            raise SourceError(str(exc)) from None
        frame = _frame(got, self._count)
        self._count += 1
        return frame

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "frame_series", "inputs": [str(p) for p in self._inputs]}


def is_temporary(path: Path) -> bool:
    """Names a writer uses before the file is complete."""
    name = path.name.lower()
    return name.startswith((".", "~")) or name.endswith(TEMP_SUFFIXES)


class FolderWatchSource(SourceBase):
    """New frames written into ``folder``, in the order their files became complete.

    ``existing=True`` also yields the files already there when the source opens (sorted by name).
    ``read`` polls every ``poll_s`` until a frame is ready or ``timeout_s`` passes
    (:class:`SourceError`, the folder simply had nothing new).
    """

    def __init__(self, folder: str | Path, *, poll_s: float = 0.2, existing: bool = False,
                 max_retries: int = 5, name: str = "watch") -> None:
        self.folder = Path(folder)
        self.name = name
        self.poll_s = poll_s
        self.existing = existing
        self.max_retries = max_retries
        self._seen: set[Path] = set()
        self._pending: dict[Path, tuple[int, int]] = {}
        self._failures: dict[Path, int] = {}
        self._frames: deque[Frame] = deque()
        self._count = 0
        self.skipped: list[str] = []
        self._open = False

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"{self.folder}: no such folder to watch")
        if not self.existing:
            self._seen = set(self._candidates())
        self._open = True

    def close(self) -> None:
        self._open = False

    def _candidates(self) -> list[Path]:
        from mcnn.data.image_io import image_suffixes

        suffixes = set(image_suffixes())
        return sorted(p for p in self.folder.iterdir()
                      if p.is_file() and p.suffix.lower() in suffixes and not is_temporary(p))

    def poll(self) -> None:
        """One look at the folder: files whose size and mtime held still since the last poll
        are read into the queue of ready frames."""
        for path in self._candidates():
            if path in self._seen:
                continue
            try:
                st = path.stat()
            except FileNotFoundError:  # renamed or removed between listing and stat
                continue
            sig = (st.st_size, st.st_mtime_ns)
            if self._pending.get(path) != sig or st.st_size == 0:
                self._pending[path] = sig
                continue
            self._take(path)

    def _take(self, path: Path) -> None:
        from mcnn.data.image_io import ImageFileError
        from mcnn.data.series import FrameSeries

        try:
            frames = list(FrameSeries([path]))
        except ImageFileError as exc:
            n = self._failures[path] = self._failures.get(path, 0) + 1
            if n >= self.max_retries:
                logger.warning("%s: skipped (%s)", path, exc)
                self.skipped.append(str(exc))
                self._seen.add(path)
            self._pending.pop(path, None)
            return
        self._seen.add(path)
        self._pending.pop(path, None)
        for f in frames:
            self._frames.append(_frame(f, self._count))
            self._count += 1

    def read(self, timeout_s: float = 2.0) -> Frame:
        if not self._open:
            raise SourceError(f"{self.name} is not open")
        deadline = time.monotonic() + timeout_s
        while not self._frames:
            self.poll()
            if self._frames:
                break
            if time.monotonic() >= deadline:
                raise SourceError(f"{self.name}: no new frame in {self.folder} within "
                                  f"{timeout_s:.1f} s")
            time.sleep(self.poll_s)
        return self._frames.popleft()

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "folder_watch", "folder": str(self.folder),
                "poll_s": self.poll_s, "skipped": list(self.skipped)}

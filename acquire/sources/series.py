"""``FrameSeriesSource``: microscope frame files (a folder, a watched folder, a stack) as a stream.

Every file goes through the project's one reader registry and normalisation policy
(``mcnn.data.image_io.read_raw`` + ``to_nchw``), so frames are ``(H, W, C)`` **float32** (unlike
camera frames, which are uint8/uint16: scientific values are kept, e.g. counts). A 3-D TIFF/NPY is a
stack of frames. Frames play at ``fps``; ``pause``/``play``/``seek`` drive a viewer's play button
and frame slider. ``watch=True`` waits at the end of a folder for new files (a microscope writing
frames) instead of stopping. ``meta`` has the file, the frame number in it and, when the file says,
``pixel_size`` as ``(y, x, unit)``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from acquire.frame import monotonic_s
from acquire.sources.base import SourceError, SourceExhausted, StreamingSource


class FrameSeriesSource(StreamingSource):
    """Frames of ``path`` (folder of images or one stack file) at ``fps`` frames/s."""

    def __init__(self, path: str | Path, *, fps: float = 10.0, loop: bool = False,
                 watch: bool = False, watch_poll_s: float = 0.2) -> None:
        super().__init__()
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.path = Path(path)
        self.name = f"series:{self.path.name}"
        self.fps, self.loop, self.watch, self.watch_poll_s = fps, loop, watch, watch_poll_s
        self._entries: list[tuple[Path, int]] = []  # (file, frame within it)
        self._stack: tuple[Path, np.ndarray, Any] | None = None  # last file read, all its frames
        self._pos = 0
        self._seek_to: int | None = None
        self._playing = threading.Event()
        self._playing.set()
        self._next_due = 0.0

    # -- what the series holds ---------------------------------------------------------------
    def _scan(self) -> None:
        from mcnn.data.image_io import ImageFileError, list_images, read_raw, to_nchw

        if not self.path.exists():
            raise SourceError(f"{self.path}: no such file or folder")
        try:
            files = list_images(self.path) if self.path.is_dir() else [self.path]
        except ImageFileError as exc:
            raise SourceError(str(exc)) from None
        known = {p for p, _ in self._entries}
        for f in files:
            if f in known:
                continue
            try:
                raw = read_raw(f)
                frames = to_nchw(raw)
            except (ImageFileError, ValueError) as exc:
                raise SourceError(str(exc)) from None
            self._entries += [(f, i) for i in range(len(frames))]
            self._stack = (f, frames, raw.pixel_size)
        if not self._entries and not self.watch:
            raise SourceError(f"{self.path}: no image frames")

    @property
    def frame_count(self) -> int:
        return len(self._entries)

    @property
    def position(self) -> int:
        """Index of the next frame to be played."""
        return self._pos

    def frame_at(self, index: int) -> tuple[np.ndarray, dict[str, Any]]:
        """Frame ``index`` of the series as ``(H, W, C)`` float32 and its meta."""
        from mcnn.data.image_io import read_raw, to_nchw

        path, k = self._entries[index]
        if self._stack is None or self._stack[0] != path:
            raw = read_raw(path)
            self._stack = (path, to_nchw(raw), raw.pixel_size)
        _, frames, pixel = self._stack
        meta: dict[str, Any] = {"file": path.name, "frame_in_file": k, "series_index": index}
        if pixel is not None:
            meta["pixel_size"] = (float(pixel.y), float(pixel.x), str(pixel.unit))
        return np.ascontiguousarray(np.moveaxis(frames[k], 0, -1)), meta

    # -- viewer controls ---------------------------------------------------------------------
    def pause(self) -> None:
        self._playing.clear()

    def play(self) -> None:
        self._next_due = monotonic_s()
        self._playing.set()

    @property
    def playing(self) -> bool:
        return self._playing.is_set()

    def seek(self, index: int) -> None:
        """Show frame ``index`` next (also while paused)."""
        if not 0 <= index < max(1, self.frame_count):
            raise ValueError(f"frame {index} is outside 0..{self.frame_count - 1}")
        self._seek_to = index

    # -- StreamingSource hooks ---------------------------------------------------------------
    def _start(self) -> None:
        self._entries, self._stack = [], None
        self._scan()
        self._pos, self._next_due = 0, monotonic_s()

    def _grab(self) -> tuple[np.ndarray, dict[str, Any]]:
        while self._seek_to is None and not self.playing:
            if not self._running.is_set():
                raise SourceExhausted(f"{self.name}: closed")
            time.sleep(0.01)
        if self._seek_to is not None:
            self._pos, self._seek_to = self._seek_to, None
        else:
            delay = self._next_due - monotonic_s()
            if delay > 0:
                time.sleep(delay)
            self._next_due = max(self._next_due + 1.0 / self.fps, monotonic_s() - 1.0 / self.fps)
        while self._pos >= self.frame_count:
            if self.loop and self.frame_count:
                self._pos = 0
            elif self.watch and self._running.is_set():
                time.sleep(self.watch_poll_s)
                self._scan()
            else:
                raise SourceExhausted(f"{self.name}: end of series")
        image, meta = self.frame_at(self._pos)
        self._pos += 1
        meta["t_monotonic_s"] = monotonic_s()
        return image, meta

    def _stop(self) -> None:
        self._stack = None

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "frame_series", "path": str(self.path),
                "fps": self.fps, "frames": self.frame_count, "watch": self.watch}

"""``FrameSeriesSource``: microscope frame files (files, folders, stacks, a watched folder) as a stream.

Files go through the project's one reader registry (``mcnn.data.image_io.open_frames``: DM3/DM4,
EMD, SER, MRC, HDF5 ``file.h5#/dataset``, TIFF, NPY, PNG...) and are read **lazily**: opening the
series reads headers only, and one frame at a time is read when it is played, so a 10 GB series
streams in constant memory. Frames are ``(H, W, 1)`` (colour ``(H, W, C)``) **as stored**: the dtype
is kept (detector counts are often uint16/uint32 or float32), so the consumer brings them into its
units once (``mcnn.stem.normalise`` for a STEM model, ``mcnn.data.image_io.normalise`` otherwise).

Timing: with ``fps`` the frames play on their own clock (a background thread, the freshest frame
wins, as for a camera) and ``pause``/``play``/``seek`` drive a viewer's play button and slider;
with ``fps=None`` every frame is handed out in order, as fast as the caller reads. ``loop`` starts
again after the last frame. ``watch=True`` (one folder) waits at the end for new files as the
microscope writes them (``acquire.sources.watch.FolderWatcher``: complete files only, readable to
their last frame; failures retried, then skipped and listed in ``skipped``). ``existing=False``
ignores the files already there when the source opens.

``meta``: ``source_file``, ``index_in_file``, ``frames_in_file``, ``series_index`` (position in the
series, what ``seek`` takes), ``pixel_size`` as ``(y, x, unit)`` when the file says, and the
reader's metadata (detector, dwell time...).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acquire.frame import Frame, monotonic_s, stamp_now
from acquire.sources.base import SourceError, SourceExhausted, SourceIdle, StreamingSource
from acquire.sources.watch import FolderWatcher


class FrameSeriesSource(StreamingSource):
    """Frames of ``inputs`` (a path or a list of files/folders/stacks) in order."""

    def __init__(self, inputs: str | Path | Sequence[str | Path], *, fps: float | None = 10.0,
                 loop: bool = False, watch: bool = False, existing: bool = True,
                 poll_s: float = 0.2, max_retries: int = 5, name: str | None = None) -> None:
        super().__init__()
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be > 0 (or None: as fast as read), got {fps}")
        self.inputs = [Path(inputs)] if isinstance(inputs, str | Path) else [Path(p) for p in inputs]
        if watch and len(self.inputs) != 1:
            raise ValueError(f"watch=True takes one folder, got {len(self.inputs)} inputs")
        self.path = self.inputs[0] if len(self.inputs) == 1 else None
        self.name = name or (f"series:{self.inputs[0].name}" if self.path else "series")
        self.fps, self.loop, self.watch, self.existing = fps, loop, watch, existing
        self.poll_s, self.max_retries = poll_s, max_retries
        self._watcher: FolderWatcher | None = None
        self._entries: list[tuple[Path, int]] = []  # (file, frame within it)
        self._frames_in: dict[Path, int] = {}
        self._stack: Any = None  # the one open FrameStack, of file _stack_path
        self._stack_path: Path | None = None
        self._pos = 0
        self._seek_to: int | None = None
        self._playing = threading.Event()
        self._playing.set()
        self._next_due = 0.0

    # -- what the series holds ---------------------------------------------------------------
    def _add(self, path: Path) -> None:
        """Count ``path``'s frames (headers only) and append them to the series; a watched file
        that grew since (a series written frame by frame) adds only its new frames."""
        from mcnn.data.image_io import open_frames

        with open_frames(path) as stack:
            n = len(stack)
            if self.watch:  # a file still being written fails here, not when played
                stack.frame(n - 1)
        known = self._frames_in.get(path, 0)
        self._entries += [(path, i) for i in range(known, n)]
        self._frames_in[path] = max(n, known)
        if self._stack_path == path:
            self._close_stack()  # reopen: the open header may list fewer frames

    def _scan(self) -> None:
        from mcnn.data.image_io import ImageFileError
        from mcnn.data.series import expand_inputs

        if self.watch:
            self.poll()
            return
        try:
            for path in expand_inputs(self.inputs):
                if not Path(str(path).split("#", 1)[0]).exists():
                    raise SourceError(f"{path}: no such file or folder")
                self._add(path)
        except ImageFileError as exc:
            raise SourceError(str(exc)) from None
        if not self._entries:
            raise SourceError(f"{', '.join(map(str, self.inputs))}: no image frames")

    def poll(self) -> None:
        """Watch: one look at the folder; complete new files join the series."""
        if self._watcher is not None:
            self._watcher.poll()  # accepting a file adds its frames

    @property
    def skipped(self) -> list[str]:
        """Watch: the files given up on (one line each, saying why)."""
        return [] if self._watcher is None else list(self._watcher.skipped)

    @property
    def frame_count(self) -> int:
        return len(self._entries)

    @property
    def position(self) -> int:
        """Index of the next frame to be played."""
        return self._pos

    def frame_at(self, index: int) -> tuple[np.ndarray, dict[str, Any]]:
        """Frame ``index`` of the series, ``(H, W, C)`` as stored, and its meta."""
        from mcnn.data.image_io import ImageFileError, open_frames

        path, k = self._entries[index]
        try:
            if self._stack is None or self._stack_path != path:
                self._close_stack()
                self._stack, self._stack_path = open_frames(path), path
            stack = self._stack
            image = stack.frame(k)
        except ImageFileError as exc:
            raise SourceError(str(exc)) from None
        if image.ndim == 2:
            image = image[..., None]
        meta: dict[str, Any] = {**stack.meta,
                                "source_file": str(stack.meta.get("source_file", path)),
                                "index_in_file": k, "frames_in_file": self._frames_in[path],
                                "series_index": index}
        pixel = stack.pixel_size
        if pixel is not None:
            meta["pixel_size"] = (float(pixel.y), float(pixel.x), str(pixel.unit))
        return np.ascontiguousarray(image), meta

    def _close_stack(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

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

    # -- reading -----------------------------------------------------------------------------
    def _wait_for_frame(self, timeout_s: float | None) -> None:
        """Until frame ``_pos`` exists: loop, or poll a watched folder; else the series ended."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self._pos >= self.frame_count:
            if self.loop and self.frame_count:
                self._pos = 0
            elif self.watch:
                if not self._running.is_set():
                    raise SourceExhausted(f"{self.name}: closed")
                if deadline is not None and time.monotonic() >= deadline:
                    raise SourceIdle(f"{self.name}: no new frame in {self.path} within "
                                     f"{timeout_s:.1f} s")
                time.sleep(self.poll_s)
                self.poll()
            else:
                raise SourceExhausted(f"{self.name}: end of series")

    def _take(self) -> tuple[np.ndarray, dict[str, Any]]:
        image, meta = self.frame_at(self._pos)
        self._pos += 1
        meta["t_monotonic_s"] = monotonic_s()
        return image, meta

    def read_next(self, after_index: int, timeout_s: float = 2.0) -> Frame:
        """With ``fps``: the freshest frame after ``after_index``; without: the next frame."""
        if self.fps is not None:
            return super().read_next(after_index, timeout_s)
        if not self.is_open:
            raise SourceError(f"{self.name} is not open")
        if self._seek_to is not None:
            self._pos, self._seek_to = self._seek_to, None
        self._wait_for_frame(timeout_s)
        image, meta = self._take()
        _, t_wall = stamp_now()
        frame = Frame(image, meta.pop("t_monotonic_s"), t_wall, self._count, meta)
        self._count += 1
        return frame

    # -- StreamingSource hooks ---------------------------------------------------------------
    def open(self) -> None:
        if self.fps is not None:
            super().open()
        elif not self.is_open:  # no clock of its own: no thread, the caller's reads pace it
            self._start()
            self._error = None
            self._running.set()

    def _start(self) -> None:
        self._entries, self._frames_in, self._stack, self._count = [], {}, None, 0
        self._watcher = None
        if self.watch:
            assert self.path is not None
            self._watcher = FolderWatcher(self.path, accept=self._add, existing=self.existing,
                                          max_retries=self.max_retries)
        self._scan()
        self._pos, self._seek_to, self._next_due = 0, None, monotonic_s()

    def _grab(self) -> tuple[np.ndarray, dict[str, Any]]:
        while self._seek_to is None and not self.playing:
            if not self._running.is_set():
                raise SourceExhausted(f"{self.name}: closed")
            time.sleep(0.01)
        if self._seek_to is not None:
            self._pos, self._seek_to = self._seek_to, None
        else:
            assert self.fps is not None
            delay = self._next_due - monotonic_s()
            if delay > 0:
                time.sleep(delay)
            self._next_due = max(self._next_due + 1.0 / self.fps, monotonic_s() - 1.0 / self.fps)
        self._wait_for_frame(None)
        return self._take()

    def _stop(self) -> None:
        self._close_stack()

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "frame_series",
                "inputs": [str(p) for p in self.inputs], "fps": self.fps, "loop": self.loop,
                "watch": self.watch, "frames": self.frame_count, "skipped": list(self.skipped)}

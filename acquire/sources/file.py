"""``FileSource``: a video file or a folder of images replayed as if it were a camera.

``fps=None`` replays at the file's own rate (a folder defaults to 30 fps) with camera semantics: a
background thread advances on the clock and ``read`` returns the freshest frame. ``fast=True``
returns every frame in order as fast as the caller reads (for conversions and tests). Frame files in
a folder are sorted by name; each frame's ``meta`` carries its file name or video frame number.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from acquire.frame import Frame, monotonic_s, stamp_now
from acquire.sources.base import SourceError, SourceExhausted, StreamingSource


def read_image(path: Path) -> np.ndarray:
    """One image file as stored, ``(H, W, C)`` (RGB for colour), through the project's one reader
    registry (``mcnn.data.image_io``); a stack gives its first frame."""
    from mcnn.data.image_io import ImageFileError, read_raw

    try:
        raw = read_raw(path)
    except ImageFileError as exc:
        raise SourceError(str(exc)) from None
    image = raw.data
    if raw.axes.startswith("N"):
        image = image[0]
    if raw.axes == "NCYX":
        image = np.moveaxis(image, 0, -1)
    return image[..., None] if image.ndim == 2 else image


def list_images(folder: Path) -> list[Path]:
    from mcnn.data.image_io import ImageFileError
    from mcnn.data.image_io import list_images as registered_images

    try:
        files = registered_images(folder)
    except ImageFileError as exc:
        raise SourceError(str(exc)) from None
    if not files:
        raise SourceError(f"no image files in {folder}")
    return files


class FileSource(StreamingSource):
    """Replay ``path`` (video file or image folder); ``loop=True`` starts again at the end."""

    def __init__(self, path: str | Path, *, fps: float | None = None, fast: bool = False,
                 loop: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.name = f"file:{self.path.name}"
        self.fps = fps
        self.fast = fast
        self.loop = loop
        self._files: list[Path] | None = None
        self._cap: Any = None
        self._pos = 0
        self._period_s = 0.0
        self._next_due = 0.0
        self._seq_open = False
        self.frame_count = 0

    def _start(self) -> None:
        if not self.path.exists():
            raise SourceError(f"{self.path} does not exist")
        if self.path.is_dir():
            self._files = list_images(self.path)
            self.frame_count = len(self._files)
            native = 30.0
        else:
            cap = cv2.VideoCapture(str(self.path))
            if not cap.isOpened():
                raise SourceError(f"cannot decode video {self.path}")
            self._cap = cap
            self.frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            native = cap.get(cv2.CAP_PROP_FPS) or 30.0
        self._period_s = 1.0 / (self.fps or native)
        self._pos = 0
        self._next_due = monotonic_s()

    def _next_image(self) -> tuple[np.ndarray, dict[str, Any]]:
        if self._files is not None:
            if self._pos >= len(self._files):
                if not self.loop:
                    raise SourceExhausted(f"{self.name}: end of folder")
                self._pos = 0
            path = self._files[self._pos]
            self._pos += 1
            return read_image(path), {"file": path.name, "file_index": self._pos - 1}
        ok, bgr = self._cap.read()
        if not ok:
            if not self.loop or self._pos == 0:
                raise SourceExhausted(f"{self.name}: end of video")
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._pos = 0
            ok, bgr = self._cap.read()
            if not ok:
                raise SourceError(f"{self.name}: cannot rewind")
        self._pos += 1
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), {"file_index": self._pos - 1}

    def _grab(self) -> tuple[np.ndarray, dict[str, Any]]:
        delay = self._next_due - monotonic_s()
        if delay > 0:
            time.sleep(delay)
        self._next_due = max(self._next_due + self._period_s, monotonic_s() - 1.0)
        image, meta = self._next_image()
        meta["t_monotonic_s"] = monotonic_s()
        return image, meta

    def _stop(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    # Sequential ("fast") mode: no thread, every frame in order.
    @property
    def is_open(self) -> bool:
        return self._seq_open if self.fast else super().is_open

    def open(self) -> None:
        if self.fast:
            self._start()
            self._seq_open = True
        else:
            super().open()

    def close(self) -> None:
        if self.fast:
            self._stop()
            self._seq_open = False
        else:
            super().close()

    def read(self, timeout_s: float = 2.0) -> Frame:
        if not self.fast:
            return super().read(timeout_s)
        if not self._seq_open:
            raise SourceError(f"{self.name} is not open")
        image, meta = self._next_image()
        t, wall = stamp_now()
        frame = Frame(image, t, wall, self._count, meta)
        self._count += 1
        return frame

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "file", "path": str(self.path), "fps": self.fps,
                "fast": self.fast, "frames": self.frame_count}

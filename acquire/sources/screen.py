"""Screens as sources: ``ScreenSource`` (a real display grabbed with mss) and ``VirtualScreen``.

``ScreenSource`` grabs synchronously: the frame is taken when ``read`` is called, so it is always
fresh, and its time is the middle of the grab. mss handles are per thread (an X connection must not
be shared), so each thread that reads gets its own.

``VirtualScreen`` is an in-memory display for work without a display server: what is ``show``-n on
it is what ``read`` returns, and listeners (the simulated rig) are told the moment it changes.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from acquire.frame import Frame, monotonic_s, stamp_now
from acquire.sources.base import SourceBase, SourceError

logger = logging.getLogger(__name__)


def check_display() -> None:
    """Raise :class:`SourceError` with a fix when no X display can be grabbed."""
    if not sys.platform.startswith("linux"):
        return
    if os.environ.get("XDG_SESSION_TYPE", "").lower() == "wayland" or (
        os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("DISPLAY")
    ):
        raise SourceError("screen capture does not work on Wayland (mss needs X11): log in with an "
                          "'Xorg' session, or use --screen virtual")
    if not os.environ.get("DISPLAY"):
        raise SourceError("no display: DISPLAY is not set (start an X server or Xvfb, e.g. "
                          "`Xvfb :99 -screen 0 1920x1080x24 & export DISPLAY=:99`, or use "
                          "--screen virtual)")


def _new_mss() -> Any:
    import mss

    factory = getattr(mss, "MSS", None) or mss.mss
    try:
        return factory()
    except Exception as exc:  # mss raises its own ScreenShotError on a bad DISPLAY
        raise SourceError(f"cannot open display {os.environ.get('DISPLAY')!r}: {exc}") from exc


class ScreenSource(SourceBase):
    """Grab monitor ``monitor`` (1 = first; 0 = all) or ``region=(x, y, w, h)`` in screen pixels."""

    def __init__(self, monitor: int = 1, region: tuple[int, int, int, int] | None = None) -> None:
        self.monitor = monitor
        self.region = region
        self.name = f"screen:{'region' if region else monitor}"
        self._local = threading.local()
        self._box: dict[str, int] | None = None
        self._count = 0
        self._lock = threading.Lock()
        self._handles: list[Any] = []

    def _mss(self) -> Any:
        sct = getattr(self._local, "sct", None)
        if sct is None:
            sct = _new_mss()
            self._local.sct = sct
            with self._lock:
                self._handles.append(sct)
        return sct

    @property
    def is_open(self) -> bool:
        return self._box is not None

    def open(self) -> None:
        check_display()
        monitors = self._mss().monitors
        if self.region is not None:
            x, y, w, h = self.region
            if w <= 0 or h <= 0:
                raise SourceError(f"screen region must have positive size, got {self.region}")
            self._box = {"left": x, "top": y, "width": w, "height": h}
        else:
            if not 0 <= self.monitor < len(monitors):
                raise SourceError(f"monitor {self.monitor} does not exist; this display has "
                                  f"monitors 1..{len(monitors) - 1} (0 = all)")
            self._box = dict(monitors[self.monitor])
            self._box.pop("is_primary", None)
            self._box.pop("output", None)

    def close(self) -> None:
        with self._lock:
            for sct in self._handles:
                try:
                    sct.close()
                except Exception:  # closing a dead X connection must not mask the real error
                    logger.debug("mss close failed", exc_info=True)
            self._handles.clear()
        self._local = threading.local()
        self._box = None

    @property
    def size_hw(self) -> tuple[int, int]:
        """``(height, width)`` of what is grabbed."""
        if self._box is None:
            raise SourceError(f"{self.name} is not open")
        return self._box["height"], self._box["width"]

    def read(self, timeout_s: float = 2.0) -> Frame:
        if self._box is None:
            raise SourceError(f"{self.name} is not open")
        t0 = monotonic_s()
        try:
            shot = self._mss().grab(self._box)
        except Exception as exc:
            raise SourceError(f"{self.name}: grab failed: {exc}") from exc
        t1, wall = stamp_now()
        bgra = np.frombuffer(shot.bgra, np.uint8).reshape(shot.height, shot.width, 4)
        rgb = cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGB)
        with self._lock:
            index = self._count
            self._count += 1
        return Frame(rgb, 0.5 * (t0 + t1), wall, index, {"grab_ms": 1e3 * (t1 - t0)})

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "screen", "monitor": self.monitor,
                "region": self.region, "box": self._box,
                "display": os.environ.get("DISPLAY")}


ScreenListener = Callable[[np.ndarray, float, int], None]


class VirtualScreen(SourceBase):
    """An in-memory screen of ``size_hw=(height, width)``: a display and a source at once.

    ``show(image)`` puts an RGB uint8 image on it (resized to fill) and returns the monotonic time it
    appeared; listeners get ``(image, t_shown, index)`` at once. ``play(stimulus, fps)`` runs a film
    on it in a background thread, for passive recordings without a real screen.
    """

    def __init__(self, size_hw: tuple[int, int] = (360, 640)) -> None:
        self.size_hw = (int(size_hw[0]), int(size_hw[1]))
        h, w = self.size_hw
        self.name = f"virtual:{w}x{h}"
        self._lock = threading.Lock()
        self._image = np.zeros((h, w, 3), np.uint8)
        self._t_shown = monotonic_s()
        self._shown = 0
        self._reads = 0
        self._listeners: list[ScreenListener] = []
        self._player: threading.Thread | None = None
        self._stop_player = threading.Event()
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    def subscribe(self, listener: ScreenListener) -> None:
        with self._lock:
            self._listeners.append(listener)
            image, t, index = self._image, self._t_shown, self._shown
        listener(image, t, index)

    def show(self, image: np.ndarray) -> float:
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.shape[:2] != self.size_hw:
            h, w = self.size_hw
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        image = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
        with self._lock:
            self._image = image
            self._t_shown = t = monotonic_s()
            self._shown += 1
            index = self._shown
            listeners = list(self._listeners)
        for listener in listeners:
            listener(image, t, index)
        return t

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        self._stop_player.set()
        if self._player is not None:
            self._player.join(timeout=5)
            self._player = None
        self._open = False

    def play(self, next_image: Callable[[int], np.ndarray], fps: float = 30.0) -> None:
        """Show ``next_image(i)`` for i = 0, 1, ... at ``fps`` until closed."""
        self._stop_player.clear()

        def run() -> None:
            i, t_next = 0, monotonic_s()
            while not self._stop_player.is_set():
                self.show(next_image(i))
                i += 1
                t_next += 1.0 / fps
                time.sleep(max(0.0, t_next - monotonic_s()))

        self._player = threading.Thread(target=run, name="virtual-film", daemon=True)
        self._player.start()

    def read(self, timeout_s: float = 2.0) -> Frame:
        t, wall = stamp_now()
        with self._lock:
            image, shown = self._image, self._shown
            index = self._reads
            self._reads += 1
        return Frame(image, t, wall, index, {"shown_index": shown})

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "virtual_screen", "size_hw": list(self.size_hw)}

"""What the screen showed, and when: the ground truth a live reconstruction is compared with.

A :class:`~acquire.sources.screen.VirtualScreen` reports every image it shows with its exact time;
a real screen (``ScreenSource``) is grabbed ``hz`` times a second on a thread. ``at(t)`` is the
image on screen at monotonic time ``t`` (the camera time minus the display-to-camera latency).
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque

import numpy as np

from acquire.frame import monotonic_s
from acquire.sources.base import SourceError
from acquire.sources.screen import VirtualScreen


class ScreenHistory:
    """The last ``keep_s`` seconds of screen images ``(t_shown_s, index, (H, W, 3) uint8)``."""

    def __init__(self, screen: object, *, hz: float = 60.0, keep_s: float = 3.0) -> None:
        self.screen, self.period_s, self.keep_s = screen, 1.0 / hz, keep_s
        self._items: deque[tuple[float, int, np.ndarray]] = deque()
        self._lock = threading.Lock()
        self._running = False
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def start(self) -> None:
        self._running = True
        if isinstance(self.screen, VirtualScreen):
            self.screen.subscribe(self._add)
            return
        self._thread = threading.Thread(target=self._poll, name="screen-history", daemon=True)
        self._thread.start()

    def _add(self, image: np.ndarray, t: float, index: int) -> None:
        with self._lock:
            self._items.append((t, index, image))
            while len(self._items) > 2 and self._items[1][0] < t - self.keep_s:
                self._items.popleft()

    def _poll(self) -> None:
        t_next = monotonic_s()
        while self._running:
            try:
                frame = self.screen.read()  # type: ignore[attr-defined]
            except SourceError as exc:
                self.error = str(exc)
                return
            self._add(frame.image[..., :3], frame.t_monotonic_s, frame.index)
            t_next = max(t_next + self.period_s, monotonic_s() - self.period_s)
            time.sleep(max(0.0, t_next - monotonic_s()))

    def at(self, t: float) -> tuple[float, int, np.ndarray] | None:
        """``(t_shown_s, index, image)`` on screen at time ``t``; None before anything was seen."""
        with self._lock:
            if not self._items:
                return None
            times = [item[0] for item in self._items]
            return self._items[max(0, bisect.bisect_right(times, t) - 1)]

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

"""``SimulatedRig``: the hidden-screen set-up in software, behind the same source protocol.

The rig watches a screen (a real display through mss, a :class:`VirtualScreen`, a function of time,
or a fixed array) and renders what a camera filming a diffusely reflecting door would see
``latency_ms`` later: the light transport, albedo, vignetting, mirror flip and colour response of
:class:`mcnn.physics.ScreenRigPhysics` on the door region ``door_roi`` of the frame, a static dark
wall around it, a slow sinusoidal auto-exposure drift, and camera noise. Because the latency, ROI
and drift are known, the calibration can be checked against them end to end.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from acquire.config import SimRigConfig
from acquire.frame import monotonic_s
from acquire.sources.base import SourceError, StreamingSource
from acquire.sources.screen import ScreenSource, VirtualScreen

logger = logging.getLogger(__name__)

ScreenFeed = ScreenSource | VirtualScreen | Callable[[float], np.ndarray] | np.ndarray


def rig_physics(camera_hw: tuple[int, int], **kwargs: Any) -> Any:
    """``ScreenRigPhysics`` for a ``(height, width)`` camera: the one place that calls it."""
    from mcnn.physics.screen_rig import ScreenRigPhysics

    return ScreenRigPhysics(camera_hw=camera_hw, **kwargs)


class SimulatedRig(StreamingSource):
    """Camera view ``(H, W, 3)`` uint8 of the door lit by ``screen``, per ``config``.

    Everything a user sets is in :class:`~acquire.config.SimRigConfig` (latency, fps, size (H, W),
    exposure drift, noise, seed, mirror, door box); the keyword arguments here are internal tuning:
    ``internal_width`` of the physics render, ``watch_hz`` (how often a real screen is grabbed,
    default ``2 * fps``) and ``blur_px`` of the light transport. Frame ``meta`` has the true
    ``exposure_gain`` and ``screen_time_s`` (when the screen state it shows appeared).
    """

    def __init__(
        self,
        screen: ScreenFeed,
        config: SimRigConfig | None = None,
        *,
        internal_width: int = 192,
        watch_hz: float | None = None,
        blur_px: float | None = None,
    ) -> None:
        super().__init__()
        self.config = config = config or SimRigConfig()
        h, w = config.size_hw
        self.name = "sim"
        self.screen = screen
        self.size_hw = (int(h), int(w))
        self.fps = float(config.fps)
        self.latency_ms = float(config.latency_ms)
        self.door_roi = config.door_roi or (int(0.2 * w), int(0.15 * h), int(0.6 * w),
                                            int(0.7 * h))
        x, y, rw, rh = self.door_roi
        self.exposure_drift = float(config.drift)
        self.drift_period_s = float(config.drift_period_s)
        self.noise_std = float(config.noise)
        self.seed = config.seed
        self.mirror = config.mirror
        self.transport = config.transport
        self._small_wh = (int(internal_width), max(8, round(internal_width * rh / rw)))  # cv2 order
        self.blur_px = blur_px if blur_px is not None else 0.06 * self._small_wh[0]
        self.watch_hz = watch_hz or 2.0 * self.fps
        self._history: deque[tuple[float, int, np.ndarray]] = deque()
        self._hist_lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._pushes = 0
        self._physics: Any = None
        self._cache: tuple[Any, np.ndarray] | None = None
        self._next_due = 0.0
        self._t0 = 0.0

    # -- what the screen showed, and when ------------------------------------------------------
    def push_screen(self, image: np.ndarray, t_shown: float, index: int | None = None) -> None:
        """Tell the rig the screen showed ``image`` (RGB, any size) from ``t_shown`` on."""
        small = cv2.resize(image[..., :3], self._small_wh, interpolation=cv2.INTER_AREA)
        keep_s = self.latency_ms / 1e3 + 2.0
        with self._hist_lock:
            self._pushes += 1
            self._history.append((t_shown, self._pushes if index is None else index, small))
            while len(self._history) > 2 and self._history[1][0] < t_shown - keep_s:
                self._history.popleft()

    def _screen_at(self, t: float) -> tuple[Any, np.ndarray, float]:
        """``(key, small RGB image, time it appeared)`` of what was on screen at time ``t``."""
        if callable(self.screen) and not isinstance(self.screen, ScreenSource | VirtualScreen):
            image = self.screen(t)
            small = cv2.resize(image[..., :3], self._small_wh, interpolation=cv2.INTER_AREA)
            return ("f", t), small, t
        with self._hist_lock:
            if not self._history:
                return ("blank",), np.zeros((self._small_wh[1], self._small_wh[0], 3), np.uint8), t
            times = [e[0] for e in self._history]
            i = max(0, bisect.bisect_right(times, t) - 1)
            t_e, idx, small = self._history[i]
        return ("s", idx), small, t_e

    def _watch(self, source: ScreenSource) -> None:
        period, t_next = 1.0 / self.watch_hz, monotonic_s()
        while self._running.is_set():
            try:
                frame = source.read()
            except SourceError as exc:
                self._fail(f"sim: watching the screen failed: {exc}")
                return
            self.push_screen(frame.image, frame.t_monotonic_s)
            t_next = max(t_next + period, monotonic_s() - period)
            time.sleep(max(0.0, t_next - monotonic_s()))

    # -- StreamingSource hooks ---------------------------------------------------------------------
    def _start(self) -> None:
        import torch

        self._physics = rig_physics((self._small_wh[1], self._small_wh[0]), seed=self.seed,
                                    blur_px=self.blur_px, noise_std=0.0,
                                    photons_full_scale=None, mirror=self.mirror,
                                    transport=self.transport)
        self._torch = torch
        rng = np.random.default_rng(self.seed)
        h, w = self.size_hw
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        wall = 0.06 + 0.03 * xx / w + 0.02 * np.sin(yy / 37.0)  # dark wall, not lit by the screen
        self._background = np.repeat((255 * wall)[..., None], 3, axis=2).astype(np.uint8)
        sigma = self.noise_std * 255.0
        bank = rng.normal(0.0, sigma, size=(6, h, w, 3)) if sigma > 0 else np.zeros((1, h, w, 3))
        self._noise_pos = np.clip(bank, 0, 255).astype(np.uint8)
        self._noise_neg = np.clip(-bank, 0, 255).astype(np.uint8)
        self._rng = rng
        self._history.clear()
        self._cache = None
        if isinstance(self.screen, VirtualScreen):
            self.screen.subscribe(lambda im, t, i: self.push_screen(im, t, i))
        elif isinstance(self.screen, np.ndarray):
            self.push_screen(self.screen, monotonic_s() - 1.0)
        self._t0 = self._next_due = monotonic_s()
        if isinstance(self.screen, ScreenSource):
            if not self.screen.is_open:
                self.screen.open()
            self._watcher = threading.Thread(target=self._watch, args=(self.screen,),
                                             name="sim-watch", daemon=True)

    def open(self) -> None:
        super().open()
        if self._watcher is not None and not self._watcher.is_alive():
            self._watcher.start()

    def exposure_gain(self, t: float) -> float:
        """The auto-exposure gain in effect at time ``t`` (the drift the calibration must catch)."""
        phase = 2 * math.pi * (t - self._t0) / self.drift_period_s
        return 1.0 + self.exposure_drift * math.sin(phase)

    def _render(self, small: np.ndarray, gain: float) -> np.ndarray:
        torch = self._torch
        x = torch.from_numpy(small).permute(2, 0, 1)[None].float() / 255.0
        with torch.no_grad():
            y = self._physics(x, exposure=gain)
        door = (y[0].permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
        _, _, rw, rh = self.door_roi
        return cv2.resize(door, (rw, rh), interpolation=cv2.INTER_LINEAR)

    def _grab(self) -> tuple[np.ndarray, dict[str, Any]]:
        delay = self._next_due - monotonic_s()
        if delay > 0:
            time.sleep(delay)
        t = monotonic_s()
        self._next_due = max(self._next_due + 1.0 / self.fps, t - 1.0 / self.fps)
        key, small, t_screen = self._screen_at(t - self.latency_ms / 1e3)
        gain = self.exposure_gain(t)
        cache_key = (key, round(gain, 4))
        if self._cache is None or self._cache[0] != cache_key:
            self._cache = (cache_key, self._render(small, gain))
        frame = self._background.copy()
        x, y, rw, rh = self.door_roi
        frame[y:y + rh, x:x + rw] = self._cache[1]
        k = int(self._rng.integers(len(self._noise_pos)))
        cv2.add(frame, self._noise_pos[k], dst=frame)
        cv2.subtract(frame, self._noise_neg[k], dst=frame)
        return frame, {"t_monotonic_s": t, "exposure_gain": gain, "screen_time_s": t_screen}

    def _stop(self) -> None:
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "simulated_rig",
                **self.config.model_dump(mode="json", exclude={"kind", "door_roi"}),
                "door_roi": list(self.door_roi)}

"""``CameraSource``: an OpenCV ``VideoCapture`` (device index, device path, URL or video file).

A background thread calls ``grab()`` as fast as the device delivers, stamps each frame right after
``grab()`` returns (the closest software time to exposure), and keeps only the freshest frame, so a
read never returns a frame that sat in the driver's buffer. Exposure, gain and white balance are
locked where the backend allows it; every setting is read back, and a setting the backend ignored
is a warning (resolution is an error: the recording would silently have the wrong size).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

from acquire.frame import monotonic_s
from acquire.sources.base import SourceError, SourceExhausted, StreamingSource

logger = logging.getLogger(__name__)

# V4L2 reports manual exposure as 1 and aperture-priority auto as 3; DirectShow uses 0.25 / 0.75.
_MANUAL_EXPOSURE_VALUES = (1.0, 0.25)


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log while probing a device: every backend that fails prints
    ``[ WARN:...]``/``[ERROR:...]`` lines to stderr, and we report the failure once, ourselves.
    With debug logging on (``-v``) OpenCV keeps talking."""
    if logger.isEnabledFor(logging.DEBUG):
        yield
        return
    log = cv2.utils.logging
    previous = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        log.setLogLevel(previous)


class CameraSource(StreamingSource):
    """Camera by ``device`` (int index, ``/dev/videoN``, ``rtsp://``/``http://`` URL or video file).

    ``size_hw`` is the requested ``(height, width)``; ``exposure``/``gain``/``white_balance_k`` given as numbers are
    set manually (auto off); ``lock_auto=True`` freezes auto exposure and white balance at their
    current values when no number is given. A video file is replayed at its own fps, like a camera.
    """

    def __init__(
        self,
        device: int | str,
        *,
        size_hw: tuple[int, int] | None = None,
        fps: float | None = None,
        exposure: float | None = None,
        gain: float | None = None,
        white_balance_k: float | None = None,
        lock_auto: bool = True,
        backend: int | None = None,
    ) -> None:
        super().__init__()
        self.device = device
        self.name = f"camera:{device}"
        self.size_hw = size_hw
        self.fps = fps
        self.exposure = exposure
        self.gain = gain
        self.white_balance_k = white_balance_k
        self.lock_auto = lock_auto
        self.backend = backend
        self._cap: Any = None
        self._is_file = False
        self._file_period_s = 0.0
        self._next_due = 0.0
        self.settings: dict[str, Any] = {}
        self.warnings: list[str] = []

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        logger.warning("%s: %s", self.name, message)

    def _start(self) -> None:
        api = self.backend if self.backend is not None else cv2.CAP_ANY
        with quiet_opencv():
            cap = cv2.VideoCapture(self.device, api)
        if not cap.isOpened():
            raise SourceError(f"cannot open camera {self.device!r} (not connected, busy, or no "
                              "permission; list devices with `v4l2-ctl --list-devices`)")
        self._cap = cap
        self._is_file = cap.get(cv2.CAP_PROP_FRAME_COUNT) > 0
        if self._is_file:
            file_fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
            self._file_period_s = 1.0 / (self.fps or file_fps)
            self._next_due = monotonic_s()
        else:
            self._apply_settings()
        self.settings = self._read_settings()

    def _set(self, prop: int, value: float, label: str) -> bool:
        ok = bool(self._cap.set(prop, value))
        back = self._cap.get(prop)
        if not ok or (back != -1 and abs(back - value) > max(1e-3, 0.02 * abs(value))):
            self._warn(f"{label}={value} not applied by the backend (reads back {back})")
            return False
        return True

    def _apply_settings(self) -> None:
        cap = self._cap
        if self.size_hw is not None:  # the device speaks width x height
            h, w = self.size_hw
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
            got_w, got_h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            if (got_h, got_w) != (h, w):
                cap.release()
                raise SourceError(f"{self.name}: asked for {w}x{h} (width x height), the camera "
                                  f"gives {got_w}x{got_h}; pick a supported size")
        if self.fps is not None:
            self._set(cv2.CAP_PROP_FPS, self.fps, "fps")
        if self.exposure is not None or self.lock_auto:
            locked = any(self._cap.set(cv2.CAP_PROP_AUTO_EXPOSURE, v) and
                         self._cap.get(cv2.CAP_PROP_AUTO_EXPOSURE) == v
                         for v in _MANUAL_EXPOSURE_VALUES)
            if not locked:
                self._warn("auto exposure could not be switched off; brightness may drift "
                           "(run `acquire-pairs calibrate exposure` to check)")
            if self.exposure is not None:
                self._set(cv2.CAP_PROP_EXPOSURE, self.exposure, "exposure")
        if self.gain is not None:
            self._set(cv2.CAP_PROP_GAIN, self.gain, "gain")
        if self.white_balance_k is not None or self.lock_auto:
            if not (cap.set(cv2.CAP_PROP_AUTO_WB, 0) and cap.get(cv2.CAP_PROP_AUTO_WB) == 0):
                self._warn("auto white balance could not be switched off; colours may drift")
            if self.white_balance_k is not None:
                self._set(cv2.CAP_PROP_WB_TEMPERATURE, self.white_balance_k, "white_balance_k")
        # Keep the driver queue short: fewer stale frames even before our thread drops them.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)

    def _read_settings(self) -> dict[str, Any]:
        cap = self._cap
        props = {
            "width": cv2.CAP_PROP_FRAME_WIDTH, "height": cv2.CAP_PROP_FRAME_HEIGHT,
            "fps": cv2.CAP_PROP_FPS, "auto_exposure": cv2.CAP_PROP_AUTO_EXPOSURE,
            "exposure": cv2.CAP_PROP_EXPOSURE, "gain": cv2.CAP_PROP_GAIN,
            "auto_wb": cv2.CAP_PROP_AUTO_WB, "wb_temperature": cv2.CAP_PROP_WB_TEMPERATURE,
        }
        out: dict[str, Any] = {k: float(cap.get(p)) for k, p in props.items()}
        out["backend"] = cap.getBackendName()
        out["is_file"] = self._is_file
        return out

    def _grab(self) -> tuple[np.ndarray, dict[str, Any]] | None:
        if self._is_file:  # replay at the file's rate, like a camera would deliver it
            delay = self._next_due - monotonic_s()
            if delay > 0:
                time.sleep(delay)
            self._next_due = max(self._next_due + self._file_period_s, monotonic_s() - 1.0)
        if not self._cap.grab():
            if self._is_file:
                raise SourceExhausted(f"{self.name}: end of video")
            time.sleep(0.01)
            return None
        t = monotonic_s()
        ok, bgr = self._cap.retrieve()
        if not ok or bgr is None:
            return None
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else bgr[..., None]
        return rgb, {"t_monotonic_s": t}

    def _stop(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "camera", "device": str(self.device),
                "requested": {"size_hw": self.size_hw, "fps": self.fps, "exposure": self.exposure,
                              "gain": self.gain, "white_balance_k": self.white_balance_k},
                "settings": self.settings, "warnings": list(self.warnings)}

"""Calibration procedures: drive a display, watch the camera, measure.

Every procedure takes a ``Display`` (full-screen Qt window, or a VirtualScreen for the simulated
rig) and an open streaming camera source, shows its patterns and returns a pydantic result.
Camera frames are collected by a thread that keeps, per frame, its time, mean RGB inside the ROI
and a small grey copy (``width 160``) for the region search.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from acquire.display import Display
from acquire.frame import monotonic_s
from acquire.sources.base import SourceError, StreamingSource
from calibration.signals import (
    correlation_map,
    drift_fraction,
    response_slope,
    responsive_box,
    step_latencies,
)
from mcnn.data.recording import ExposureCalibration, LatencyCalibration, RoiCalibration

logger = logging.getLogger(__name__)

SMALL_WIDTH = 160


@dataclass
class _Samples:
    times: list[float] = field(default_factory=list)
    rgb: list[np.ndarray] = field(default_factory=list)
    small: list[np.ndarray] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)


class FrameCollector:
    """Collects every new frame of ``camera`` (a StreamingSource) until stopped."""

    def __init__(self, camera: StreamingSource, roi: tuple[int, int, int, int] | None = None,
                 keep_small: bool = False) -> None:
        self.camera, self.roi, self.keep_small = camera, roi, keep_small
        self.samples = _Samples()
        self.error: str | None = None
        self._running = True
        self._thread = threading.Thread(target=self._run, name="calib-collect", daemon=True)

    def __enter__(self) -> FrameCollector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._running = False
        self._thread.join(timeout=5)
        if self.error is not None and exc[0] is None:
            raise SourceError(self.error)

    def _run(self) -> None:
        last = -1
        while self._running:
            try:
                frame = self.camera.read_next(last, timeout_s=1.0)
            except SourceError as exc:
                if self._running:
                    self.error = str(exc)
                return
            last = frame.index
            image = frame.image.astype(np.float32)
            if self.roi is not None:
                x, y, w, h = self.roi
                part = image[y:y + h, x:x + w]
            else:
                part = image
            self.samples.times.append(frame.t_monotonic_s)
            self.samples.indices.append(frame.index)
            self.samples.rgb.append(part.reshape(-1, image.shape[2]).mean(axis=0))
            if self.keep_small:
                h_small = max(1, round(image.shape[0] * SMALL_WIDTH / image.shape[1]))
                grey = image.mean(axis=2)
                self.samples.small.append(cv2.resize(grey, (SMALL_WIDTH, h_small),
                                                     interpolation=cv2.INTER_AREA))


def _hold(display: Display, seconds: float) -> None:
    """Wait while keeping a GUI display responsive."""
    pump = getattr(display, "pump", None)
    end = monotonic_s() + seconds
    while (left := end - monotonic_s()) > 0:
        if pump is not None:
            pump()
        time.sleep(min(0.004, left))


def _flat(display: Display, level: int) -> np.ndarray:
    return np.full((*display.size_hw, 3), level, np.uint8)


def measure_latency(display: Display, camera: StreamingSource, *, flashes: int = 12,
                    hold_s: float = 0.3, roi: tuple[int, int, int, int] | None = None
                    ) -> LatencyCalibration:
    """Flash black/white full-screen ``flashes`` times; time each step seen by the camera."""
    events: list[tuple[float, bool]] = []
    display.show(_flat(display, 0))
    _hold(display, hold_s)
    with FrameCollector(camera, roi) as collector:
        _hold(display, 0.1)
        for k in range(2 * flashes):
            rising = k % 2 == 0
            events.append((display.show(_flat(display, 255 if rising else 0)), rising))
            _hold(display, hold_s)
    s = collector.samples
    levels = np.array([c.mean() for c in s.rgb])
    samples = step_latencies(np.array(s.times), levels, events)
    if not samples:
        raise ValueError("no brightness steps seen by the camera: check it films the lit surface "
                         f"and that hold_s ({hold_s}) exceeds the latency")
    ms = sorted(1e3 * v for v in samples)
    period = float(np.median(np.diff(s.times))) * 1e3 if len(s.times) > 2 else None
    return LatencyCalibration(
        median_ms=statistics.median(ms), p95_ms=ms[min(len(ms) - 1, int(0.95 * len(ms)))],
        mean_ms=statistics.fmean(ms), std_ms=statistics.pstdev(ms), count=len(ms),
        samples_ms=[round(v, 3) for v in ms], camera_period_ms=period)


def measure_roi(display: Display, camera: StreamingSource, *, steps: int = 16,
                hold_s: float = 0.3, latency_s: float = 0.2, threshold: float = 0.5,
                seed: int = 0) -> RoiCalibration:
    """Show ``steps`` random grey levels; the ROI is where the camera follows them best.

    Only frames taken ``latency_s`` after a level was shown count (the light has settled).
    """
    rng = np.random.default_rng(seed)
    levels = rng.permutation(np.linspace(0, 255, steps)).astype(int)
    shown: list[float] = []
    with FrameCollector(camera, keep_small=True) as collector:
        for level in levels:
            shown.append(display.show(_flat(display, int(level))))
            _hold(display, hold_s)
    s = collector.samples
    times = np.array(s.times)
    frames, drive = [], []
    for k, t0 in enumerate(shown):
        t1 = shown[k + 1] if k + 1 < len(shown) else t0 + hold_s
        sel = np.nonzero((times >= t0 + latency_s) & (times < t1))[0]
        if sel.size:
            frames.append(np.mean([s.small[i] for i in sel], axis=0))
            drive.append(levels[k])
    if len(frames) < 4:
        raise ValueError(f"too few settled frames ({len(frames)}); raise hold_s above the latency")
    stack, drive_arr = np.stack(frames), np.array(drive, float)
    corr = correlation_map(stack, drive_arr)
    (x, y, w, h), score = responsive_box(corr, threshold, response_slope(stack, drive_arr))
    cam_w = camera.read().image.shape[1]
    cam_h = camera.read().image.shape[0]
    f = cam_w / corr.shape[1]
    box = (round(x * f), round(y * f), min(cam_w, round(w * f)), min(cam_h, round(h * f)))
    return RoiCalibration(roi=box, method="correlation", camera_size_hw=(cam_h, cam_w),
                          score=score)


def measure_exposure(display: Display, camera: StreamingSource, *, duration_s: float = 3.0,
                     level: int = 128, threshold: float = 0.02,
                     roi: tuple[int, int, int, int] | None = None, latency_s: float = 0.2,
                     dark_frames: int = 10) -> tuple[ExposureCalibration, np.ndarray]:
    """Watch a fixed grey for ``duration_s``: warn on brightness/colour drift; then a dark frame.

    Returns the result and the dark frame ``(H, W, C)`` float32 (mean of frames, screen black).
    """
    display.show(_flat(display, level))
    _hold(display, latency_s + 0.1)
    with FrameCollector(camera, roi) as collector:
        _hold(display, duration_s)
    rgb = np.array(collector.samples.rgb)
    if len(rgb) < 5:
        raise ValueError(f"only {len(rgb)} camera frames in {duration_s} s")
    grey = rgb.mean(axis=1)
    drift = drift_fraction(grey)
    g = np.maximum(rgb[:, 1], 1e-6) if rgb.shape[1] == 3 else None
    colour = 0.0 if g is None else max(drift_fraction(rgb[:, 0] / g), drift_fraction(rgb[:, 2] / g))
    drifting = drift > threshold or colour > threshold
    if drifting:
        logger.warning("camera exposure/white balance drifts by %.1f %% / %.1f %% over %.1f s: lock "
                       "them (camera settings) or expect a brightness jitter in the data",
                       100 * drift, 100 * colour, duration_s)
    display.show(_flat(display, 0))
    _hold(display, latency_s + 0.1)
    acc, last = None, -1
    for _ in range(dark_frames):
        frame = camera.read_next(last, timeout_s=2.0)
        last = frame.index
        acc = frame.image.astype(np.float64) if acc is None else acc + frame.image
    dark = (acc / dark_frames).astype(np.float32)
    result = ExposureCalibration(duration_s=duration_s, frames=len(rgb),
                                 mean_level=float(grey.mean()), drift_fraction=drift,
                                 colour_drift_fraction=colour, threshold=threshold,
                                 drifting=drifting, dark_level=float(dark.mean()))
    return result, dark

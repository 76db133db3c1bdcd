"""``PairRecorder``: capture (camera frame, screen image) pairs without ever waiting on the disk.

Run = setup -> loop -> teardown in ``finally``. Capture happens on the calling thread (the Qt thread
in active mode); finished pairs go through a bounded queue to writer threads. When the queue is
full the pair is dropped and counted (and logged), never silently lost. A writer error (disk full)
or a source error (camera unplugged) stops the run cleanly; everything already in the manifest stays.

Passive mode (screen plays a film): a thread grabs the screen into a short timestamped history; each
new camera frame taken at ``t_c`` is paired with the screen grab nearest to ``t_c - latency``.
Active mode: the recorder shows each stimulus, waits ``latency + settle``, takes the first camera
frame after that, and grabs the screen as a check that the stimulus really was on it.
"""

from __future__ import annotations

import logging
import queue
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acquire.config import RecordConfig
from acquire.display import Display
from acquire.frame import Frame, monotonic_s
from acquire.sources.base import Source, SourceError, StreamingSource
from acquire.stimulus import StimulusSource
from acquire.storage import DiskFullError, RecordingWriter

logger = logging.getLogger(__name__)


@dataclass
class RecorderStats:
    """Live counters; ``snapshot()`` is what the progress line shows."""

    started: float = field(default_factory=monotonic_s)
    captured: int = 0
    written: int = 0
    dropped: int = 0
    flagged: int = 0
    skews_ms: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    stop_reason: str = "running"

    def snapshot(self) -> dict[str, Any]:
        elapsed = max(1e-9, monotonic_s() - self.started)
        skews = sorted(abs(s) for s in self.skews_ms)
        p95 = skews[min(len(skews) - 1, int(0.95 * len(skews)))] if skews else float("nan")
        return {"pairs": self.written, "captured": self.captured, "dropped": self.dropped,
                "flagged": self.flagged, "elapsed_s": round(elapsed, 3),
                "pairs_per_s": round(self.written / elapsed, 2),
                "skew_median_ms": round(statistics.median(skews), 3) if skews else None,
                "skew_p95_ms": round(p95, 3) if skews else None, "stop_reason": self.stop_reason}


@dataclass
class _Job:
    index: int
    camera: np.ndarray
    screen: np.ndarray
    stimulus: np.ndarray | None
    entry: dict[str, Any]


class _ScreenHistory:
    """Background screen grabs at ``hz`` kept for ``keep_s`` seconds, for latency-aware pairing."""

    def __init__(self, source: Source, hz: float, keep_s: float) -> None:
        self.source, self.period = source, 1.0 / hz
        self.frames: deque[Frame] = deque(maxlen=max(4, int(keep_s * hz) + 4))
        self.cond = threading.Condition()
        self.error: str | None = None
        self.running = True
        self.thread = threading.Thread(target=self._run, name="screen-history", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        t_next = monotonic_s()
        while self.running:
            try:
                frame = self.source.read()
            except SourceError as exc:
                with self.cond:
                    self.error = str(exc)
                    self.cond.notify_all()
                return
            with self.cond:
                self.frames.append(frame)
                self.cond.notify_all()
            t_next = max(t_next + self.period, monotonic_s() - self.period)
            time.sleep(max(0.0, t_next - monotonic_s()))

    def oldest_s(self) -> float:
        with self.cond:
            return self.frames[0].t_monotonic_s if self.frames else float("inf")

    def nearest(self, t: float, timeout_s: float) -> Frame:
        """The grab nearest to ``t``, waiting (briefly) for one taken at or after ``t``."""
        with self.cond:
            self.cond.wait_for(lambda: self.error is not None or (
                bool(self.frames) and self.frames[-1].t_monotonic_s >= t), timeout=timeout_s)
            if self.error is not None:
                raise SourceError(self.error)
            if not self.frames:
                raise SourceError("no screen grab arrived")
            return min(self.frames, key=lambda f: abs(f.t_monotonic_s - t))

    def stop(self) -> None:
        self.running = False
        self.thread.join(timeout=5)


class PairRecorder:
    """Records pairs per ``config`` from open-able ``camera`` and ``screen`` sources into ``writer``.

    ``latency_ms`` is the display-to-camera latency applied when pairing; ``display`` and
    ``stimulus`` are needed in active mode. ``progress`` is called about twice a second with
    ``RecorderStats.snapshot()``.
    """

    def __init__(self, config: RecordConfig, camera: Source, screen: Source, writer: RecordingWriter,
                 *, latency_ms: float = 0.0, display: Display | None = None,
                 stimulus: StimulusSource | None = None,
                 progress: Callable[[dict[str, Any]], None] | None = None) -> None:
        if config.mode == "active" and (display is None or stimulus is None):
            raise ValueError("active mode needs a display and a stimulus source")
        self.config, self.camera, self.screen, self.writer = config, camera, screen, writer
        self.latency_s = latency_ms / 1e3
        self.display, self.stimulus, self.progress = display, stimulus, progress
        self.stats = RecorderStats()
        self._stop = threading.Event()
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=config.queue)
        self._fatal: str | None = None
        self._last_drop_log = 0.0

    def request_stop(self) -> None:
        """Ask the run to end after the pair in hand (safe from a signal handler)."""
        self._stop.set()

    # -- writers ------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self._fatal is not None:
                continue  # after a disk error, pairs still queued cannot be written
            try:
                self.writer.write_pair(job.index, job.camera, job.screen, job.stimulus, job.entry)
                self.stats.written += 1
            except DiskFullError as exc:
                self._fatal = f"disk full ({exc.strerror}); recording stopped, " \
                              f"{self.stats.written} pairs kept"
                self._stop.set()
            except Exception as exc:
                logger.exception("writing pair %d failed", job.index)
                self._fatal = f"writing pair {job.index} failed: {exc}"
                self._stop.set()

    def _submit(self, job: _Job) -> None:
        self.stats.captured += 1
        if job.entry["flags"]:
            self.stats.flagged += 1
        self.stats.skews_ms.append(job.entry["skew_ms"])
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.stats.dropped += 1
            now = monotonic_s()
            if now - self._last_drop_log > 2.0:
                logger.warning("writers fall behind: %d pairs dropped so far", self.stats.dropped)
                self._last_drop_log = now

    # -- run ----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Record until the pair count, the duration, a stop request or an error; return stats."""
        cfg = self.config
        writers = [threading.Thread(target=self._write_loop, name=f"writer-{i}", daemon=True)
                   for i in range(cfg.writers)]
        history: _ScreenHistory | None = None
        try:
            self.camera.open()
            self.screen.open()
            for t in writers:
                t.start()
            self.stats.started = monotonic_s()
            if cfg.mode == "passive":
                hz = cfg.screen_hz or 2.0 * cfg.rate_hz
                history = _ScreenHistory(self.screen, hz, self.latency_s + 0.5)
                self._passive(history)
            else:
                self._active()
        except SourceError as exc:
            self.stats.stop_reason = f"source error: {exc}"
            logger.error("%s", exc)
        finally:
            if history is not None:
                history.stop()
            for _ in writers:
                self._queue.put(None)
            for t in writers:
                t.join()
            for source in (self.camera, self.screen):
                try:
                    source.close()
                except Exception:
                    logger.warning("closing %s failed", source.name, exc_info=True)
            if self._fatal is not None:
                self.stats.stop_reason = self._fatal
            elif self.stats.stop_reason == "running":
                self.stats.stop_reason = "interrupted" if self._stop.is_set() else "done"
            summary = self.stats.snapshot()
            self.writer.write_summary(summary)
            self.writer.close()
            if self.progress is not None:
                self.progress(summary)
        return summary

    def _done(self) -> bool:
        cfg = self.config
        if self._stop.is_set():
            return True
        if cfg.pairs is not None and self.stats.captured >= cfg.pairs:
            self.stats.stop_reason = "done"
            return True
        if cfg.duration_s is not None and monotonic_s() - self.stats.started >= cfg.duration_s:
            self.stats.stop_reason = "done"
            return True
        return False

    def _report(self, last: list[float]) -> None:
        now = monotonic_s()
        if self.progress is not None and now - last[0] >= 0.5:
            last[0] = now
            self.progress(self.stats.snapshot())

    def _next_camera(self, after: int) -> Frame:
        if isinstance(self.camera, StreamingSource):
            return self.camera.read_next(after, timeout_s=2.0)
        return self.camera.read()

    def _passive(self, history: _ScreenHistory) -> None:
        period, t_next, last_cam, index, last = 1.0 / self.config.rate_hz, monotonic_s(), -1, 0, [0.0]
        while not self._done():
            time.sleep(max(0.0, t_next - monotonic_s()))
            t_next = max(t_next + period, monotonic_s() - period)
            cam = self._next_camera(last_cam)
            flags = ["duplicate_camera"] if cam.index == last_cam else []
            last_cam = cam.index
            target = cam.t_monotonic_s - self.latency_s
            if history.oldest_s() > target:  # warm-up: the screen then was not grabbed yet
                continue
            scr = history.nearest(target, timeout_s=max(0.1, 2 * history.period))
            skew_ms = 1e3 * (target - scr.t_monotonic_s)
            if abs(skew_ms) > self.config.max_skew_ms:
                flags.append("large_skew")
            entry = {"t_camera_s": cam.t_monotonic_s, "t_screen_s": scr.t_monotonic_s,
                     "t_wall": cam.t_wall, "skew_ms": skew_ms, "camera_frame": cam.index,
                     "screen_frame": scr.index, "flags": flags, "camera_meta": _jsonable(cam.meta)}
            self._submit(_Job(index, cam.image, scr.image, None, entry))
            index += 1
            self._report(last)

    def _active(self) -> None:
        assert self.display is not None and self.stimulus is not None
        wait_s = self.latency_s + self.config.settle_ms / 1e3
        period, t_next, last_cam, index, last = 1.0 / self.config.rate_hz, monotonic_s(), -1, 0, [0.0]
        pump = getattr(self.display, "pump", lambda: None)
        while not self._done():
            while monotonic_s() < t_next:
                pump()
                time.sleep(min(0.005, max(0.0, t_next - monotonic_s())))
            t_next = max(t_next + period, monotonic_s() - period)
            image, stimulus_id = self.stimulus.next()
            t_shown = self.display.show(image)
            cam = self._next_camera(last_cam)
            while cam.t_monotonic_s < t_shown + wait_s:
                pump()
                cam = self._next_camera(cam.index)
            last_cam = cam.index
            scr = self.screen.read()
            flags = [] if _same_picture(scr.image, image) else ["screenshot_mismatch"]
            skew_ms = 1e3 * (cam.t_monotonic_s - t_shown - wait_s)
            entry = {"t_camera_s": cam.t_monotonic_s, "t_screen_s": scr.t_monotonic_s,
                     "t_shown_s": t_shown, "t_wall": cam.t_wall, "skew_ms": skew_ms,
                     "camera_frame": cam.index, "screen_frame": scr.index, "flags": flags,
                     "stimulus_id": _jsonable(stimulus_id), "camera_meta": _jsonable(cam.meta)}
            self._submit(_Job(index, cam.image, scr.image, image, entry))
            index += 1
            self._report(last)


def _same_picture(screenshot: np.ndarray, shown: np.ndarray, tolerance: float = 12.0) -> bool:
    """Whether the screenshot shows the stimulus (mean abs difference at 64x36, 0..255 units)."""
    import cv2

    a = cv2.resize(screenshot[..., :3], (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32)
    b = cv2.resize(shown[..., :3], (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32)
    return float(np.abs(a - b).mean()) <= tolerance


def _jsonable(meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, str | int | float | bool) or value is None:
            out[key] = value
    return out

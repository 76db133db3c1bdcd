"""The live pipeline both viewers share: source thread -> inference worker -> newest-result slot.

Three stages, each on its own clock, joined by one-item slots so that latency never builds up:

- the *reader* thread pulls frames from a :class:`~acquire.sources.base.Source` and keeps only the
  newest in a slot (a frame that arrives before the previous one was taken replaces it);
- the *worker* thread takes the newest frame, runs ``process(frame)`` (preprocessing + inference)
  and puts the result in the result slot (again, newest wins);
- the *display* (a Qt timer in the viewers, a polling loop in headless mode) takes the newest result
  and calls :meth:`LivePipeline.displayed`, which stamps end-to-end latency: frame capture time
  (``Frame.t_monotonic_s``) -> shown, both on :func:`acquire.frame.monotonic_s`.

No Qt here: the display side is whoever polls :meth:`LivePipeline.take`. :func:`run_headless` is
the benchmark (N displayed frames -> JSON numbers).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acquire.frame import Frame, monotonic_s
from acquire.sources.base import Source, SourceError, SourceExhausted, SourceIdle

logger = logging.getLogger(__name__)


@dataclass
class Processed:
    """What ``process(frame)`` returns: display arrays per panel, scalar readouts, model time."""

    panels: dict[str, np.ndarray]
    values: dict[str, float] = field(default_factory=dict)
    inference_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)  # for saving (e.g. output in counts)


@dataclass
class LiveResult:
    """One processed frame on its way to the display (``seq`` counts results, 1, 2, ...)."""

    frame: Frame
    processed: Processed
    seq: int
    t_done_s: float


Process = Callable[[Frame], Processed]


def _percentiles(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    a = np.asarray(values, dtype=np.float64)
    return round(float(np.median(a)), 3), round(float(np.percentile(a, 95)), 3)


class LivePipeline:
    """Runs ``process`` on the newest frame of ``source``; ``extra_sources`` are closed with it.

    ``start`` opens the sources; ``stop`` (idempotent, also on errors) joins both threads and
    closes every source. ``pause``/``resume`` stop pulling frames (the last result stays shown).
    """

    def __init__(self, source: Source, process: Process, *,
                 extra_sources: tuple[Any, ...] = (), read_timeout_s: float = 5.0,
                 on_result: Callable[[LiveResult], None] | None = None) -> None:
        self.source = source
        self.process = process
        self.extra_sources = extra_sources
        self.read_timeout_s = read_timeout_s
        self.on_result = on_result
        self._frame_cond = threading.Condition()
        self._frame: Frame | None = None
        self._frame_seq = 0
        self._result_lock = threading.Lock()
        self._result: LiveResult | None = None
        self._taken_seq = 0
        self._running = threading.Event()
        self._resume = threading.Event()
        self._resume.set()
        self._threads: list[threading.Thread] = []
        self.finished = threading.Event()  # the source ran out or failed; the worker drained
        self.error: str | None = None
        self.input_error = False  # the error is a frame the user gave that cannot be used
        self.exhausted = False
        self._stopped = False
        # measurements (seconds on monotonic_s unless named _ms)
        self.inference_ms: list[float] = []
        self.latency_ms: list[float] = []
        self.display_times_s: list[float] = []
        self.frames_read = 0
        self.frames_skipped = 0  # frames the source produced that were never processed
        self._last_index = -1
        self._reader_done = False

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> LivePipeline:
        for s in (*self.extra_sources, self.source):
            if not getattr(s, "is_open", False):
                s.open()
        self._running.set()
        for target, name in ((self._read_loop, "live-read"), (self._work_loop, "live-infer")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        """Stop both threads and close every source (safe to call twice, from any thread)."""
        if self._stopped:
            return
        self._stopped = True
        self._running.clear()
        self._resume.set()
        with self._frame_cond:
            self._frame_cond.notify_all()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=10.0)
        for s in (self.source, *self.extra_sources):
            try:
                s.close()
            except Exception:  # closing the others matters more than one close error
                logger.exception("closing %s failed", getattr(s, "name", s))

    def pause(self) -> None:
        self._resume.clear()

    def resume(self) -> None:
        self._resume.set()

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    # -- stages ------------------------------------------------------------------------------
    def _read_one(self) -> Frame:
        read_next = getattr(self.source, "read_next", None)
        if read_next is not None:
            return read_next(self._last_index, self.read_timeout_s)
        return self.source.read(self.read_timeout_s)

    def _read_loop(self) -> None:
        while self._running.is_set():
            if not self._resume.wait(timeout=0.1):
                continue
            try:
                frame = self._read_one()
            except SourceExhausted:
                self.exhausted = True
                break
            except SourceIdle:  # a watched folder with no new file yet: keep waiting
                continue
            except SourceError as exc:
                if self._running.is_set():
                    self.error = str(exc)
                    logger.warning("live source stopped: %s", exc)
                break
            if self._last_index >= 0 and frame.index > self._last_index + 1:
                self.frames_skipped += frame.index - self._last_index - 1
            self._last_index = frame.index
            self.frames_read += 1
            with self._frame_cond:
                if self._frame is not None:
                    self.frames_skipped += 1  # replaced before the worker took it
                self._frame = frame
                self._frame_seq += 1
                self._frame_cond.notify_all()
        with self._frame_cond:
            self._frame_cond.notify_all()
        self._reader_done = True

    def _work_loop(self) -> None:
        seq = 0
        while True:
            with self._frame_cond:
                self._frame_cond.wait_for(lambda: self._frame is not None
                                          or not self._running.is_set()
                                          or self._reader_done, timeout=0.5)
                frame, self._frame = self._frame, None
            if frame is None:
                if not self._running.is_set() or self._reader_done:
                    break
                continue
            try:
                processed = self.process(frame)
            except ValueError as exc:  # the frame is unusable (a user's file): its one line
                self.error, self.input_error = str(exc), True
                logger.warning("frame %d: %s", frame.index, exc)
                break
            except Exception as exc:  # a failing model must stop the view with its reason
                logger.exception("processing frame %d failed", frame.index)
                self.error = f"processing failed: {type(exc).__name__}: {exc}"
                break
            seq += 1
            result = LiveResult(frame, processed, seq, monotonic_s())
            self.inference_ms.append(processed.inference_ms)
            with self._result_lock:
                self._result = result
            if self.on_result is not None:
                self.on_result(result)
        self.finished.set()

    # -- display side ------------------------------------------------------------------------
    def take(self) -> LiveResult | None:
        """The newest result not yet taken, or None (called by the display's timer)."""
        with self._result_lock:
            result = self._result
            if result is None or result.seq <= self._taken_seq:
                return None
            self._taken_seq = result.seq
            return result

    def displayed(self, result: LiveResult) -> float:
        """Record that ``result`` is now on screen; returns its end-to-end latency in ms."""
        now = monotonic_s()
        latency = 1e3 * (now - result.frame.t_monotonic_s)
        self.latency_ms.append(latency)
        self.display_times_s.append(now)
        return latency

    @property
    def done(self) -> bool:
        """Nothing more will be shown: the worker finished and its last result was taken."""
        if not self.finished.is_set():
            return False
        with self._result_lock:
            return self._result is None or self._result.seq <= self._taken_seq

    def fps(self, window: int = 30) -> float:
        """Display rate over the last ``window`` displayed frames (frames/s)."""
        times = self.display_times_s[-window:]
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def stats(self) -> dict[str, Any]:
        """The benchmark numbers: display fps, inference and end-to-end latency medians/p95."""
        inf_med, inf_p95 = _percentiles(self.inference_ms)
        lat_med, lat_p95 = _percentiles(self.latency_ms)
        times = self.display_times_s
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        return {
            "frames_displayed": len(times),
            "frames_read": self.frames_read,
            "frames_skipped": self.frames_skipped,
            "fps": round((len(times) - 1) / span, 2) if span > 0 else 0.0,
            "inference_ms_median": inf_med, "inference_ms_p95": inf_p95,
            "latency_ms_median": lat_med, "latency_ms_p95": lat_p95,
            "source_error": self.error, "input_error": self.input_error,
        }


@contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGINT/SIGTERM call ``stop`` (main thread only; previous handlers are restored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, _frame: object) -> None:
        logger.info("signal %d: stopping", signum)
        stop()

    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run_headless(pipeline: LivePipeline, frames: int, *, timeout_s: float = 120.0,
                 warmup: int = 0,
                 on_display: Callable[[LiveResult], None] | None = None) -> dict[str, Any]:
    """Run until ``frames`` results were displayed (polled every 1 ms, like a fast GUI timer).

    The first ``warmup`` displayed frames (model warm-up, first allocations) are not measured.
    Returns :meth:`LivePipeline.stats`; the pipeline is stopped and its sources closed on return.
    """
    stop = threading.Event()
    deadline = monotonic_s() + timeout_s
    shown = 0
    with stop_on_signals(stop.set):
        pipeline.start()
        try:
            while shown < frames + warmup and not stop.is_set() and monotonic_s() < deadline:
                result = pipeline.take()
                if result is None:
                    if pipeline.done:
                        break
                    time.sleep(0.001)
                    continue
                pipeline.displayed(result)
                if on_display is not None:
                    on_display(result)
                shown += 1
                if shown == warmup:
                    pipeline.latency_ms.clear()
                    pipeline.display_times_s.clear()
                    pipeline.inference_ms.clear()
        finally:
            pipeline.stop()
    out = pipeline.stats()
    out["interrupted"] = stop.is_set()
    out["timed_out"] = shown < frames + warmup and not stop.is_set() and not pipeline.done
    return out


def print_report(prog: str, stats: dict[str, Any], values: list[dict[str, float]],
                 keys: tuple[str, ...]) -> int:
    """Both viewers' end of a run: means of the per-frame ``keys`` added to ``stats``, the JSON on
    stdout, and one line with exit code 2 when a frame could not be used (a user's file), 1 when
    the source or the model failed during the run."""
    import json
    import sys

    for key in keys:
        got = [v[key] for v in values if key in v]
        if got:
            stats[f"{key}_mean"] = round(float(np.mean(got)), 4)
    print(json.dumps(stats))
    if stats.get("source_error"):
        print(f"{prog}: error: {stats['source_error']}", file=sys.stderr)
        return 2 if stats.get("input_error") else 1
    return 0

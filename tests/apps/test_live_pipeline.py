"""The live pipeline: newest frame wins (latency does not build up), stats, clean shutdown."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from acquire.sources.base import SourceExhausted, StreamingSource
from apps.live.pipeline import LivePipeline, Processed, run_headless


class TickSource(StreamingSource):
    """Frames at ``fps`` whose pixels hold their own index; ``limit`` frames then exhausted."""

    def __init__(self, fps: float = 200.0, limit: int | None = None) -> None:
        super().__init__()
        self.name, self.fps, self.limit, self.n = "tick", fps, limit, 0
        self.closed = False

    def _start(self) -> None:
        self.n = 0

    def _grab(self):
        time.sleep(1.0 / self.fps)
        if self.limit is not None and self.n >= self.limit:
            raise SourceExhausted("done")
        self.n += 1
        return np.full((4, 4, 1), self.n % 256, np.uint8), {}

    def _stop(self) -> None:
        self.closed = True


def slow_process(ms: float):
    def process(frame):
        time.sleep(ms / 1e3)
        return Processed({"x": frame.image[..., 0].astype(np.float32)}, inference_ms=ms)
    return process


def test_a_slow_model_skips_stale_frames_instead_of_queueing_them():
    source = TickSource(fps=200.0)
    stats = run_headless(LivePipeline(source, slow_process(25.0)), frames=15)
    assert stats["frames_displayed"] == 15
    # 200 fps in, ~40 fps through the model: most frames must be skipped, none queued ...
    assert stats["frames_skipped"] > stats["frames_displayed"]
    # ... so the latency stays about one inference (plus a source period), never growing.
    assert stats["latency_ms_p95"] < 25.0 * 3
    assert 20 < stats["fps"] < 45
    assert stats["inference_ms_median"] == pytest.approx(25.0)
    assert source.closed and not source.is_open


def test_a_finite_source_ends_the_run_with_every_frame_shown_when_the_model_keeps_up():
    source = TickSource(fps=100.0, limit=12)
    shown: list[int] = []
    stats = run_headless(LivePipeline(source, slow_process(0.0)), frames=100,
                         on_display=lambda r: shown.append(r.frame.index))
    assert not stats["timed_out"] and stats["source_error"] is None
    assert shown == sorted(shown) and len(shown) >= 10
    assert source.closed


def test_sigterm_stops_the_headless_run_and_closes_the_source():
    source = TickSource(fps=100.0)
    timer = threading.Timer(0.4, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.start()
    stats = run_headless(LivePipeline(source, slow_process(1.0)), frames=10_000)
    timer.join()
    assert stats["interrupted"] and stats["frames_displayed"] > 5
    assert source.closed


def test_a_failing_model_stops_the_view_with_its_reason():
    def broken(frame):
        raise RuntimeError("CUDA out of memory")

    source = TickSource()
    stats = run_headless(LivePipeline(source, broken), frames=5, timeout_s=10)
    assert "CUDA out of memory" in stats["source_error"]
    assert source.closed


@pytest.mark.parametrize("fps", [None, 20.0])
def test_a_watched_folder_is_waited_on_past_the_read_timeout(tmp_path, fps):
    """A watched folder with no new file for longer than the read timeout is idle, not a failed
    source: the pipeline keeps waiting and shows the file written later."""
    from acquire.sources.series import FrameSeriesSource

    np.save(tmp_path / "first.npy", np.full((16, 16), 3, np.uint16))
    source = FrameSeriesSource(tmp_path, fps=fps, watch=True, poll_s=0.05)
    pipeline = LivePipeline(source, slow_process(1.0), read_timeout_s=0.2)

    def later() -> None:
        time.sleep(1.5)
        np.save(tmp_path / "late.npy", np.full((16, 16), 7, np.uint16))

    writer = threading.Thread(target=later)
    writer.start()
    shown: list[float] = []
    try:
        stats = run_headless(pipeline, frames=2,
                             on_display=lambda r: shown.append(float(r.frame.image.mean())))
    finally:
        writer.join()
    assert pipeline.error is None and stats["frames_displayed"] == 2
    assert shown == [3.0, 7.0]

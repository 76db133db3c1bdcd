"""The live path as a benchmark: one fixed frame replayed as a camera stream through LivePipeline.

``mcnn.bench.streaming`` times a model through whatever ``stream`` function it is given; this is
the one the viewers' numbers mean: a :class:`~acquire.sources.base.StreamingSource` on its own
clock, the newest frame taken by the inference worker, the newest result taken by a display loop
(:func:`apps.live.pipeline.run_headless`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from acquire.sources.base import StreamingSource
from apps.live.pipeline import LivePipeline, Processed, run_headless


class RepeatSource(StreamingSource):
    """``image`` as a stream of frames at ``fps`` (each stamped when it is produced)."""

    def __init__(self, image: np.ndarray, fps: float) -> None:
        super().__init__()
        if fps <= 0:
            raise ValueError(f"fps={fps} must be > 0")
        self.name, self.image, self.period_s = "repeat", image, 1.0 / fps
        self._next = 0.0

    def _start(self) -> None:
        self._next = time.perf_counter()

    def _grab(self) -> tuple[np.ndarray, dict[str, Any]]:
        self._next += self.period_s
        delay = self._next - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        else:  # fell behind (a slow machine): restart the clock instead of bursting
            self._next = time.perf_counter()
        return self.image, {}

    def _stop(self) -> None:
        pass

    def info(self) -> dict[str, Any]:
        return {**super().info(), "fps": 1.0 / self.period_s, "shape": list(self.image.shape)}


def live_stream(infer: Callable[[np.ndarray], np.ndarray], frame: np.ndarray, frames: int,
                warmup: int, source_fps: float) -> dict[str, Any]:
    """Stats of ``frames`` displayed results of ``infer`` on ``frame`` replayed at ``source_fps``
    through :class:`LivePipeline` (``warmup`` displayed frames first, not measured)."""
    from acquire.frame import monotonic_s

    def process(f: Any) -> Processed:
        t0 = monotonic_s()
        y = infer(f.image)
        return Processed({"out": y}, inference_ms=1e3 * (monotonic_s() - t0))

    pipeline = LivePipeline(RepeatSource(frame, source_fps), process)
    return run_headless(pipeline, frames, warmup=warmup)

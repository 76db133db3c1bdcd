"""Benchmark of the whole chain on a real X display with the simulated rig.

Measures (1) the latency calibration error against the rig's configured latency, with patterns
shown by the full-screen Qt window and seen by the rig through mss, and (2) a sustained passive
recording at the given camera size while the Qt window plays a generated film: pairs/s, drops,
skew median/p95. Prints nothing; returns a JSON-able dict. It lives in ``calibration`` because it
drives the latency calibration; layers run apps -> calibration -> acquire.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from acquire.frame import monotonic_s


def run_bench(*, seconds: float = 10.0, camera_hw: tuple[int, int] = (720, 1280),
              latency_ms: float = 80.0, rate_hz: float = 30.0, start_xvfb: bool = False,
              flashes: int = 10) -> dict[str, Any]:
    """Run the benchmark; ``start_xvfb`` starts a private 1920x1080 Xvfb (SourceError if absent)."""
    from acquire.xvfb import Xvfb, x11_environment

    xvfb = Xvfb((1920, 1080)).start() if start_xvfb else None
    try:
        with x11_environment(xvfb.display if xvfb is not None else None):
            return _run(seconds, camera_hw, latency_ms, rate_hz, flashes)
    finally:
        if xvfb is not None:
            xvfb.stop()


def _run(seconds: float, camera_hw: tuple[int, int], latency_ms: float, rate_hz: float,
         flashes: int) -> dict[str, Any]:
    from acquire.config import RecordConfig, SimRigConfig, VirtualScreenConfig
    from acquire.display import QtStimulusWindow
    from acquire.session import record
    from acquire.sources.screen import ScreenSource
    from acquire.sources.sim import SimulatedRig
    from acquire.stimulus import generated_image
    from calibration.procedures import measure_latency

    window = QtStimulusWindow()
    rig_config = SimRigConfig(size_hw=camera_hw, latency_ms=latency_ms, fps=rate_hz)
    rig = SimulatedRig(ScreenSource(1), rig_config)
    with rig:
        lat = measure_latency(window, rig, flashes=flashes, hold_s=max(0.25, 2.5 * latency_ms / 1e3))
    out = Path(tempfile.mkdtemp(prefix="acquire-bench-"))
    config = RecordConfig(camera=rig_config, screen=1, rate_hz=rate_hz, duration_s=seconds, out=out, name="bench",
                          latency_ms=lat.median_ms)
    result: dict[str, Any] = {}
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            result["folder"], result["summary"] = record(config)
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=worker, name="bench-record")
    thread.start()
    i, t_next, film, film_hw = 0, monotonic_s(), 30.0, VirtualScreenConfig().size_hw
    while thread.is_alive():  # the film the passive recorder watches, on the Qt thread
        window.show(generated_image(i, film_hw))
        i += 1
        t_next += 1.0 / film
        while (left := t_next - monotonic_s()) > 0:
            window.pump()
            time.sleep(min(0.004, left))
    thread.join()
    window.close()
    if errors:
        raise errors[0]
    summary = result["summary"]
    shutil.rmtree(out, ignore_errors=True)
    return {
        "camera_hw": list(camera_hw), "screen_hw": list(window.size_hw),
        "target_rate_hz": rate_hz, "seconds": seconds, "cpu_cores": os.cpu_count(),
        "pairs": summary["pairs"], "pairs_per_s": summary["pairs_per_s"],
        "dropped": summary["dropped"], "flagged": summary["flagged"],
        "skew_median_ms": summary["skew_median_ms"], "skew_p95_ms": summary["skew_p95_ms"],
        "latency_configured_ms": latency_ms, "latency_measured_median_ms": round(lat.median_ms, 2),
        "latency_measured_p95_ms": round(lat.p95_ms, 2),
        "latency_error_ms": round(lat.median_ms - latency_ms, 2),
        "camera_frame_period_ms": lat.camera_period_ms, "latency_steps": lat.count,
        "film_frames_shown": i,
    }

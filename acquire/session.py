"""Wire a RecordConfig to devices: build sources and display, apply the calibration, record.

This is what the ``acquire-pairs`` command and the benchmark call; library code, so it logs and
raises, and the command turns errors into messages and exit codes.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from acquire.config import RecordConfig
from acquire.display import Display
from acquire.frame import monotonic_s
from acquire.recorder import PairRecorder
from acquire.sources.screen import ScreenSource, VirtualScreen
from acquire.sources.spec import build_camera, build_screen
from acquire.stimulus import StimulusSource, generated_image
from acquire.storage import RecordingWriter
from mcnn.data.recording import CalibrationResult, RecordingMetadata

logger = logging.getLogger(__name__)


def software_version() -> str:
    try:
        from importlib.metadata import version

        return f"mcnn-imaging {version('mcnn-imaging')}"
    except Exception:
        return "mcnn-imaging (unknown version)"


def display_for(screen: ScreenSource | VirtualScreen) -> Display:
    """The display that puts images on ``screen``: itself if virtual, else a full-screen window."""
    if isinstance(screen, VirtualScreen):
        return screen
    from acquire.display import QtStimulusWindow

    geometry = None
    if screen.region is not None:
        geometry = screen.region
    return QtStimulusWindow(screen_index=max(0, screen.monitor - 1), geometry=geometry)


def latency_for(config: RecordConfig, calibration: CalibrationResult | None) -> float:
    """Latency (ms) to apply: explicit override, else calibrated (median passive, p95 active)."""
    if config.latency_ms is not None:
        return config.latency_ms
    if calibration is not None and calibration.latency is not None:
        lat = calibration.latency
        return lat.median_ms if config.mode == "passive" else lat.p95_ms
    logger.warning("no latency calibration: pairing assumes 0 ms display-to-camera latency "
                   "(run `acquire-pairs calibrate latency`)")
    return 0.0


def record(config: RecordConfig, *, progress: Callable[[dict[str, Any]], None] | None = None,
           on_start: Callable[[PairRecorder], None] | None = None) -> tuple[Path, dict[str, Any]]:
    """Record per ``config``; returns the recording folder and the final stats."""
    calibration = CalibrationResult.load(config.calibration) if config.calibration else None
    screen = build_screen(config.screen)
    camera = build_camera(config.camera, screen)
    display: Display | None = None
    stimulus: StimulusSource | None = None
    if config.mode == "active":
        stimulus = StimulusSource(config.stimulus, size_hw=config.stimulus_size_hw,
                                  seed=config.seed)
        screen.open()
        display = display_for(screen)
    elif isinstance(screen, VirtualScreen):  # nothing else would play a film on it
        size, seed = screen.size_hw, config.seed
        screen.play(lambda i: generated_image(seed * 1_000_003 + i, size), fps=30.0)
    name = config.name or datetime.now().strftime("rec-%Y%m%d-%H%M%S")
    folder = Path(config.out) / name
    try:
        camera.open()  # open before writing metadata so that it holds the settings in effect
        screen.open()
    except BaseException:
        camera.close()
        screen.close()  # also stops a virtual screen's film
        if display is not None and display is not screen:
            display.close()
        raise
    latency_ms = latency_for(config, calibration)  # after the devices: their errors come first
    now = time.time()
    metadata = RecordingMetadata(
        software=software_version(), started_wall=now,
        started_iso=datetime.fromtimestamp(now, timezone.utc).isoformat(),
        started_monotonic_s=monotonic_s(), host=platform.node(), mode=config.mode,
        camera=camera.info(), screen=screen.info(), rate_hz=config.rate_hz,
        frame_format=config.format, latency_ms_used=latency_ms, calibration=calibration,
        config=config.model_dump(mode="json"))
    try:
        writer = RecordingWriter(folder, metadata, config.calibration)
    except BaseException:
        camera.close()
        screen.close()
        raise
    recorder = PairRecorder(config, camera, screen, writer, latency_ms=latency_ms,
                            display=display, stimulus=stimulus, progress=progress)
    if on_start is not None:
        on_start(recorder)
    try:
        summary = recorder.run()
    finally:
        if display is not None and display is not screen:
            display.close()
        if stimulus is not None:
            stimulus.close()
    return folder, summary

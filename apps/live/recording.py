"""Saving ``(camera, screen)`` pairs while viewing, in the recording format ``acquire-pairs`` writes.

Pairs go through a bounded queue to one writer thread (``acquire.storage.RecordingWriter``: crash-
safe files and an append-only manifest), so a slow disk never stalls the view; a pair that finds
the queue full is dropped and counted. The folder is created on the first pair, so toggling
recording on and off in the viewer makes one recording.
"""

from __future__ import annotations

import logging
import platform
import queue
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from acquire.frame import Frame, monotonic_s

logger = logging.getLogger(__name__)


class LivePairSaver:
    """Writes pairs to ``folder`` while ``enabled``; ``close`` drains the queue and finishes it."""

    def __init__(self, folder: Path, *, camera: Any, screen: Any,
                 latency_ms: float, calibration_file: Path | None = None,
                 frame_format: str = "tiff", queue_size: int = 64, enabled: bool = True) -> None:
        self.folder = Path(folder)
        self.camera, self.screen = camera, screen  # sources: their info() goes in the metadata
        self.latency_ms, self.calibration_file = latency_ms, calibration_file
        self.frame_format = frame_format
        self.enabled = enabled
        self.written = self.dropped = self.failed = 0
        self._queue: queue.Queue[tuple[int, np.ndarray, np.ndarray, dict[str, Any]] | None] = \
            queue.Queue(maxsize=queue_size)
        self._writer: Any = None
        self._index = 0
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def _open(self) -> None:
        from acquire.session import software_version
        from acquire.storage import RecordingWriter
        from mcnn.data.recording import CalibrationResult, RecordingMetadata

        calibration = (CalibrationResult.load(self.calibration_file)
                       if self.calibration_file else None)
        now = time.time()
        metadata = RecordingMetadata(
            software=software_version(), started_wall=now,
            started_iso=datetime.fromtimestamp(now, timezone.utc).isoformat(),
            started_monotonic_s=monotonic_s(), host=platform.node(), mode="passive",
            camera=self.camera.info(), screen=self.screen.info(), rate_hz=30.0,
            frame_format=self.frame_format, latency_ms_used=self.latency_ms,
            calibration=calibration, config={"recorded_by": "nlos-view"})  # type: ignore[arg-type]
        self._writer = RecordingWriter(self.folder, metadata, self.calibration_file)
        self._thread = threading.Thread(target=self._run, name="live-record", daemon=True)
        self._thread.start()

    def submit(self, camera: Frame, screen: np.ndarray, t_screen_s: float, screen_frame: int
               ) -> None:
        """Queue one pair (camera frame as captured, screen image it shows) if enabled."""
        if not self.enabled or self.error is not None:
            return
        if self._writer is None:
            self._open()
        entry = {
            "t_camera_s": camera.t_monotonic_s, "t_screen_s": t_screen_s, "t_wall": camera.t_wall,
            "skew_ms": 1e3 * (camera.t_monotonic_s - self.latency_ms / 1e3 - t_screen_s),
            "camera_frame": camera.index, "screen_frame": screen_frame,
            "camera_meta": {k: v for k, v in camera.meta.items()
                            if isinstance(v, int | float | str | bool)},
        }
        try:
            self._queue.put_nowait((self._index, camera.image, screen, entry))
            self._index += 1
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            index, camera, screen, entry = job
            try:
                self._writer.write_pair(index, camera, screen, None, entry)
                self.written += 1
            except Exception as exc:  # disk full, permissions: stop recording, keep viewing
                logger.exception("recording pair %d failed", index)
                self.error = f"{type(exc).__name__}: {exc}"
                self.failed += 1
                return

    def close(self) -> dict[str, Any] | None:
        """Finish the recording (summary.json); returns the counts (None: nothing was recorded)."""
        if self._writer is None and not self.dropped:
            return None
        summary = {"pairs": self.written, "dropped": self.dropped, "failed": self.failed,
                   "error": self.error, "folder": str(self.folder)}
        if self._writer is not None:
            self._queue.put(None)
            if self._thread is not None:
                self._thread.join(timeout=30)
            self._writer.write_summary({**summary, "stopped": "viewer closed"})
            self._writer.close()
            self._writer = None
        return summary

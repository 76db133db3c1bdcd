"""The source protocol and a base class for sources that produce frames on their own clock.

A *source* is anything that yields :class:`~acquire.frame.Frame` objects: a camera, a screen grab, a
video file, an image folder, the simulated rig, and (next) microscope frame-file readers such as a
STEM series. The protocol is deliberately small so that such readers plug in: ``open``/``close``,
``read`` (the current or next frame), ``info`` (what to store in a recording's metadata), and the
context manager. Finite sources raise :class:`SourceExhausted` when they run out.

Streaming devices (cameras, the rig, a file replayed at its own rate) derive from
:class:`StreamingSource`: a background thread reads continuously and keeps only the freshest frame
and its time under a lock, so ``read`` never hands out a stale buffered frame.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol, runtime_checkable

import numpy as np

from acquire.frame import Frame, stamp_now

logger = logging.getLogger(__name__)


class SourceError(RuntimeError):
    """A source cannot deliver frames (unplugged camera, no display, unreadable file)."""


class SourceExhausted(SourceError):
    """A finite source (file, folder, frame series) has no more frames."""


class SourceIdle(SourceError):
    """No new frame yet from a source that waits for more (a watched folder): not a failure, a
    reader keeps waiting."""


@runtime_checkable
class Source(Protocol):
    """What the recorder and the calibration need from any frame producer."""

    name: str

    def open(self) -> None: ...

    def close(self) -> None: ...

    def read(self, timeout_s: float = 2.0) -> Frame:
        """The freshest frame (streaming sources) or the next one (sequential sources)."""
        ...

    def info(self) -> dict[str, Any]:
        """JSON-able description: kind, resolution, fps, settings actually in effect."""
        ...

    def __enter__(self) -> Source: ...

    def __exit__(self, *exc: object) -> None: ...


class SourceBase:
    """Context-manager plumbing shared by the concrete sources."""

    name: str = "source"

    def open(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": type(self).__name__}

    def __enter__(self) -> SourceBase:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StreamingSource(SourceBase):
    """A source whose frames arrive on their own clock, read by a background thread.

    Subclasses implement ``_start()``, ``_grab() -> (image, meta)`` (blocking until the device has a
    new frame; return ``None`` on a failed read) and ``_stop()``. After ``max_failures`` failed grabs
    in a row the source is marked broken and ``read`` raises :class:`SourceError` with the reason,
    which the recorder turns into a clean stop that keeps everything already written.
    """

    max_failures: int = 25

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._count = 0
        self._error: str | None = None
        self._running = threading.Event()
        self._thread: threading.Thread | None = None

    # -- subclass hooks -------------------------------------------------------------------------
    def _start(self) -> None:
        raise NotImplementedError

    def _grab(self) -> tuple[np.ndarray, dict[str, Any]] | None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._running.is_set()

    def open(self) -> None:
        if self.is_open:
            return
        self._start()
        self._error = None
        self._running.set()
        self._thread = threading.Thread(target=self._loop, name=f"{self.name}-grab", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._running.clear()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        self._stop()
        with self._cond:
            self._cond.notify_all()

    def _loop(self) -> None:
        failures = 0
        while self._running.is_set():
            try:
                got = self._grab()
            except SourceExhausted as exc:
                self._fail(str(exc) or f"{self.name}: no more frames", exhausted=True)
                return
            except Exception as exc:  # a device error must reach the reader, not kill silently
                logger.exception("%s: grab failed", self.name)
                got = None
                last = f"{type(exc).__name__}: {exc}"
            else:
                last = "read returned no frame"
            if got is None:
                failures += 1
                if failures >= self.max_failures:
                    self._fail(f"{self.name}: {failures} reads failed in a row ({last}); "
                               "is the device unplugged?")
                    return
                continue
            failures = 0
            image, meta = got
            t_mono, t_wall = stamp_now()
            frame = Frame(image, meta.pop("t_monotonic_s", t_mono), t_wall, self._count, meta)
            with self._cond:
                self._latest = frame
                self._count += 1
                self._cond.notify_all()

    def _fail(self, message: str, exhausted: bool = False) -> None:
        logger.warning(message)
        with self._cond:
            self._error = message
            self._exhausted = exhausted
            self._cond.notify_all()

    # -- reading ----------------------------------------------------------------------------------
    def read(self, timeout_s: float = 2.0) -> Frame:
        """The freshest frame (waits for the first one)."""
        return self.read_next(-1, timeout_s)

    def read_next(self, after_index: int, timeout_s: float = 2.0) -> Frame:
        """The freshest frame whose index is greater than ``after_index``; waits up to ``timeout_s``.

        Frames in between are skipped on purpose (they are stale); the index gap tells how many.
        """
        if not self.is_open and self._error is None:
            raise SourceError(f"{self.name} is not open")
        with self._cond:
            ok = self._cond.wait_for(
                lambda: self._error is not None
                or (self._latest is not None and self._latest.index > after_index)
                or not self._running.is_set(),
                timeout=timeout_s,
            )
            latest = self._latest
            if latest is not None and latest.index > after_index:
                return latest
            if self._error is not None:
                cls = SourceExhausted if getattr(self, "_exhausted", False) else SourceError
                raise cls(self._error)
            if not ok:
                cls = SourceIdle if getattr(self, "watch", False) else SourceError
                raise cls(f"{self.name}: no new frame within {timeout_s:.1f} s")
            raise SourceError(f"{self.name} was closed")

    @property
    def frames_produced(self) -> int:
        return self._count

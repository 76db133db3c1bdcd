"""Fixtures of the command-line and viewer tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def spin_until_shown() -> Callable[..., int]:
    """``spin(window, frames, timeout_s=30)``: run the Qt event loop until a ``LiveWindow`` has
    shown ``frames`` results or the time is up; returns how many it showed."""

    def spin(window: Any, frames: int, timeout_s: float = 30.0) -> int:
        from apps.live.panels import qt_app

        app = qt_app()
        deadline = time.monotonic() + timeout_s
        while window.shown < frames and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.002)
        return window.shown

    return spin

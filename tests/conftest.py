"""Shared fixtures."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def xvfb_display() -> Iterator[str]:
    """A private 1920x1080 Xvfb display (``":N"``) for tests that need real X11 (mss, Qt xcb).

    Skips when Xvfb is not installed, except in CI (``CI`` set), where that is a failure.
    """
    if shutil.which("Xvfb") is None:
        if os.environ.get("CI"):
            pytest.fail("Xvfb is required in CI (apt-get install xvfb)")
        pytest.skip("Xvfb not installed")
    from acquire.xvfb import Xvfb

    with Xvfb((1920, 1080)) as server:
        old = {k: os.environ.get(k) for k in ("DISPLAY", "QT_QPA_PLATFORM")}
        os.environ["DISPLAY"] = server.display
        os.environ["QT_QPA_PLATFORM"] = "xcb"
        try:
            yield server.display
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

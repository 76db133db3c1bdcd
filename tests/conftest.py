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
    from acquire.xvfb import Xvfb, x11_environment

    with Xvfb((1920, 1080)) as server, x11_environment(server.display):
        yield server.display

"""Start a private Xvfb display (tests and the benchmark): real X11, so mss and Qt work as on a desk."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

from acquire.sources.base import SourceError


class Xvfb:
    """``with Xvfb((1920, 1080)) as x: x.display`` -> ``":N"``; the server stops on exit."""

    def __init__(self, size: tuple[int, int] = (1920, 1080), depth: int = 24) -> None:
        self.size, self.depth = size, depth
        self.proc: subprocess.Popen[bytes] | None = None
        self.display = ""

    def start(self) -> Xvfb:
        binary = shutil.which("Xvfb")
        if binary is None:
            raise SourceError("Xvfb not found: apt-get install xvfb")
        read_fd, write_fd = os.pipe()
        self.proc = subprocess.Popen(
            [binary, "-displayfd", str(write_fd), "-screen", "0",
             f"{self.size[0]}x{self.size[1]}x{self.depth}", "-nolisten", "tcp", "-noreset"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write_fd)
        deadline, data = time.monotonic() + 10, b""
        with os.fdopen(read_fd, "rb") as pipe:
            while not data.endswith(b"\n") and time.monotonic() < deadline:
                chunk = pipe.read(1)
                if not chunk:
                    break
                data += chunk
        if not data.strip():
            self.stop()
            raise RuntimeError("Xvfb did not start")
        self.display = f":{int(data.strip())}"
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None

    def __enter__(self) -> Xvfb:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def x11_environment(display: str | None) -> Iterator[None]:
    """Point mss and Qt (xcb) at ``display`` (None: keep ``DISPLAY``), restoring both on exit."""
    old = {k: os.environ.get(k) for k in ("DISPLAY", "QT_QPA_PLATFORM")}
    try:
        if display is not None:
            os.environ["DISPLAY"] = display
        os.environ["QT_QPA_PLATFORM"] = "xcb"
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

"""Progress lines that show a run is alive whatever stderr is (terminal, file, pipe, job log).

A line is logged when ``every_s`` seconds of wall time or ``every_steps`` steps have passed since the
previous one: ``step 120/2000 (6%)  3.41 it/s  loss 0.0412  lr 9.8e-04  ETA 0:09:11``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("mcnn.train.trainer")


def hms(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class ProgressReporter:
    """Decides when to log a progress line; ``clock`` is injectable for tests."""

    def __init__(
        self,
        total: int,
        start_step: int,
        *,
        every_s: float = 10.0,
        every_steps: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.every_s = every_s
        self.every_steps = every_steps or max(total // 10, 1)
        self.clock = clock
        self._t0 = self._last_t = clock()
        self._step0 = self._last_step = start_step
        self.lines = 0

    def update(self, step: int, loss: float, lr: float) -> str | None:
        """Log (and return) a progress line if one is due at ``step``."""
        now = self.clock()
        due = now - self._last_t >= self.every_s or step - self._last_step >= self.every_steps
        if not due and step < self.total:
            return None
        rate = (step - self._step0) / max(now - self._t0, 1e-9)
        eta = (self.total - step) / rate if rate > 0 else float("inf")
        line = (
            f"step {step}/{self.total} ({100 * step / max(self.total, 1):.0f}%)  {rate:.2f} it/s  "
            f"loss {loss:.4g}  lr {lr:.3g}  ETA {hms(eta) if eta != float('inf') else '?'}"
        )
        log.info("%s", line)
        self._last_t, self._last_step = now, step
        self.lines += 1
        return line

"""Stopping a run cleanly: SIGINT (Ctrl-C) and SIGTERM (schedulers, ``kill``) only raise a flag.

The training loop reads the flag between steps, so a stop never lands between ``optimizer.step()``
and the step counter: the checkpoint it saves is exactly the state after a whole step. Under DDP the
flag is all-reduced, so every process stops after the same step even if one got the signal.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import torch

log = logging.getLogger("mcnn.train.trainer")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopFlag:
    """Set by a stop signal while ``installed`` is active; ``next_step`` names the step in flight."""

    def __init__(self, next_step: Callable[[], int]) -> None:
        self.signal: int | None = None
        self._next_step = next_step

    @property
    def name(self) -> str:
        return signal.Signals(self.signal or signal.SIGINT).name

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signal = signum
        log.warning("%s: stopping once step %d is complete (Ctrl-C again to stop now)",
                    signal.Signals(signum).name, self._next_step())

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Route the stop signals here; the previous handlers come back on exit.

        Only the main thread may set handlers; elsewhere signals keep their usual meaning.
        """
        self.signal = None
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    def agreed(self, distributed: bool, device: torch.device) -> bool:
        """Whether any process got a stop signal (one all-reduce per step under DDP)."""
        flag = self.signal is not None
        if not distributed:
            return flag
        import torch.distributed as dist

        t = torch.tensor([int(flag)], device=device if device.type == "cuda" else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

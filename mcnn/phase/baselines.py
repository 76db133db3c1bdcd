"""The classical methods by name, all with one signature (see ``mcnn.phase``)."""

from __future__ import annotations

from collections.abc import Callable

from mcnn.phase.gs import gerchberg_saxton
from mcnn.phase.tie import fft_tie, multiplane_tie

BASELINES: dict[str, Callable[..., object]] = {
    "fft_tie": fft_tie,
    "multiplane_tie": multiplane_tie,
    "gs": gerchberg_saxton,
}

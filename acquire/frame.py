"""One frame from any source, stamped on the one clock every source shares.

Layout: ``image`` is ``(H, W, C)`` row-major, RGB order for colour, ``uint8`` or ``uint16``.
Times: ``t_monotonic_s`` comes from :func:`monotonic_s` (``time.perf_counter``, CLOCK_MONOTONIC on
Linux) so that camera, screen and display times can be subtracted; ``t_wall`` is ``time.time()`` for
humans and for matching with other logs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

monotonic_s = time.perf_counter
"""The single clock of the toolkit: every timestamp in a recording comes from it."""


@dataclass(frozen=True)
class Frame:
    """An image with its capture time (seconds on :func:`monotonic_s`), sequence index and metadata.

    ``index`` counts frames the source produced; a gap between two reads means frames were missed,
    an equal index means the same frame was read twice. ``meta`` holds per-frame facts a source knows
    (exposure gain, file name, stimulus id, dose for a microscope frame...).
    """

    image: np.ndarray
    t_monotonic_s: float
    t_wall: float
    index: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def size_hw(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        return int(self.image.shape[0]), int(self.image.shape[1])


def stamp_now() -> tuple[float, float]:
    """``(monotonic seconds, wall-clock seconds)`` taken back to back."""
    return monotonic_s(), time.time()

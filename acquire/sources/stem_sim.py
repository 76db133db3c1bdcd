"""``StemSimSource``: the STEM simulator as a live microscope, frames at ``fps``.

Each frame is a fresh simulated low-dose HAADF image (``mcnn.physics`` ``StemConfig``): image
``(H, W, 1)`` float32 in target units (counts / dose, mean about 1), ``meta["clean"]`` the noise-free
image, ``meta["dose_e_per_px"]`` and ``meta["pixel_size"]`` ``(y, x, "nm")`` (an assumed sampling,
``pixel_size_nm``; the simulator itself works in pixels). Frames are a pure function of ``seed``
and the frame number.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from acquire.frame import monotonic_s
from acquire.sources.base import StreamingSource


class StemSimSource(StreamingSource):
    """Simulated STEM frames of ``size_hw`` at ``fps``; ``dose_e_per_px`` fixes the dose."""

    def __init__(self, *, size_hw: tuple[int, int] = (128, 128), fps: float = 30.0,
                 dose_e_per_px: float | None = 4.0, seed: int = 0,
                 pixel_size_nm: float | None = 0.03, config: Any = None) -> None:
        super().__init__()
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.name = "stem-sim"
        self.size_hw = (int(size_hw[0]), int(size_hw[1]))
        self.fps, self.dose, self.seed, self.pixel_size_nm = fps, dose_e_per_px, seed, pixel_size_nm
        self.config = config
        self._n = 0
        self._next_due = 0.0

    def _start(self) -> None:
        from mcnn.physics.build import build_content, build_simulator
        from mcnn.physics.config import ProceduralContentConfig, StemConfig

        config = self.config or StemConfig()
        if self.dose is not None:
            config = config.model_copy(update={"dose_e_per_px_range": (self.dose, self.dose)})
        self._sim = build_simulator(config)
        self._content = build_content(ProceduralContentConfig())
        self._n, self._next_due = 0, monotonic_s()

    def render(self, n: int) -> tuple[np.ndarray, dict[str, Any]]:
        """Frame number ``n``: ``((H, W, 1) float32 noisy, meta with the clean image)``."""
        import torch

        g = torch.Generator().manual_seed(self.seed * 1_000_003 + n)
        with torch.no_grad():
            noisy, clean = self._sim.sample(1, self.size_hw, g, self._content)
        meta: dict[str, Any] = {"clean": clean[0, 0].numpy()[..., None], "sim_frame": n}
        if self.dose is not None:
            meta["dose_e_per_px"] = self.dose
        if self.pixel_size_nm is not None:
            meta["pixel_size"] = (self.pixel_size_nm, self.pixel_size_nm, "nm")
        return noisy[0, 0].numpy()[..., None].astype(np.float32), meta

    def _grab(self) -> tuple[np.ndarray, dict[str, Any]]:
        delay = self._next_due - monotonic_s()
        if delay > 0:
            time.sleep(delay)
        self._next_due = max(self._next_due + 1.0 / self.fps, monotonic_s() - 1.0 / self.fps)
        image, meta = self.render(self._n)
        self._n += 1
        meta["t_monotonic_s"] = monotonic_s()
        return image, meta

    def _stop(self) -> None:
        pass

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "stem_sim", "size_hw": list(self.size_hw),
                "fps": self.fps, "dose_e_per_px": self.dose, "seed": self.seed}

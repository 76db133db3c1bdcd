"""Stimuli for active recordings and calibration: an image folder, a video, or generated content.

``next()`` returns ``(image (H, W, 3) uint8 RGB, stimulus_id)``; the id says exactly what was shown
(file name, video frame number, or the seed of a generated image, which regenerates it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from acquire.sources.base import SourceError, SourceExhausted


def generated_image(seed: int, size_hw: tuple[int, int]) -> np.ndarray:
    """A cheap natural-looking colour image (smooth field + random shapes), a pure function of seed.

    Fast enough (a few ms) to generate between stimuli; ``mcnn.physics`` content is richer but too
    slow for this, and any folder of images can be given instead.
    """
    import cv2

    h, w = size_hw
    rng = np.random.default_rng(seed)
    cells = int(rng.integers(2, 9))
    coarse = rng.uniform(0, 255, size=(cells, max(2, cells * h // max(w, 1) + 1), 3))
    image = cv2.resize(coarse.astype(np.float32).transpose(1, 0, 2), (w, h),
                       interpolation=cv2.INTER_CUBIC)
    image = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(0, 8))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(max(2, h // 20), max(3, h // 3)))
        if rng.random() < 0.5:
            cv2.circle(image, (cx, cy), r, colour, -1, lineType=cv2.LINE_AA)
        else:
            cv2.rectangle(image, (cx - r, cy - r // 2), (cx + r, cy + r // 2), colour, -1)
    return image


class StimulusSource:
    """``spec`` is ``generated``, an image folder or a video file; ``size_hw`` is ``(height,
    width)`` of generated images."""

    def __init__(self, spec: str = "generated", *, size_hw: tuple[int, int] = (360, 640),
                 seed: int = 0, loop: bool = True) -> None:
        self.spec = spec
        self.size_hw = size_hw
        self.seed = seed
        self.count = 0
        self._file_source: Any = None
        if spec != "generated":
            from acquire.sources.file import FileSource

            path = Path(spec)
            if not path.exists():
                raise SourceError(f"stimulus {spec!r} is neither 'generated' nor an existing "
                                  "folder or video")
            self._file_source = FileSource(path, fast=True, loop=loop)
            self._file_source.open()

    def next(self) -> tuple[np.ndarray, dict[str, Any]]:
        i = self.count
        self.count += 1
        if self._file_source is not None:
            try:
                frame = self._file_source.read()
            except SourceExhausted:
                raise
            image = frame.image
            if image.dtype != np.uint8:
                image = (image / max(1, int(image.max())) * 255).astype(np.uint8)
            if image.shape[2] == 1:
                image = np.repeat(image, 3, axis=2)
            return image, {"stimulus_index": i, "source": self.spec, **frame.meta}
        seed = self.seed * 1_000_003 + i
        return generated_image(seed, self.size_hw), {"stimulus_index": i, "source": "generated",
                                                  "seed": seed}

    def close(self) -> None:
        if self._file_source is not None:
            self._file_source.close()

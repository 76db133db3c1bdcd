"""Drift between consecutive frames of a series, for Noise2Noise pairs that show the same field.

A STEM series drifts by a few pixels per frame. Noise2Noise fits ``f(frame_k)`` to
``frame_{k+1}``; if the two are offset, the network learns to shift and blur rather than to
denoise. The offset is found by cross-correlating the two frames after a Hann window (drifted
content is not periodic) and a Gaussian low-pass (at under 1 e/px the correlation of single
pixels is mostly noise), searching only shifts up to ``max_shift_px``: a lattice correlates with
itself at every lattice vector, and the smallest plausible drift is the one wanted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def frame_shift(a: np.ndarray, b: np.ndarray, max_shift_px: int | None = None,
                blur_px: float = 1.5) -> tuple[int, int]:
    """Integer ``(dy, dx)`` with ``b[y + dy, x + dx] ~ a[y, x]`` (the field moved by it from
    ``a`` to ``b``); ``max_shift_px`` defaults to a quarter of the smaller side."""
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"frames of shapes {a.shape} and {b.shape}: expected two equal 2-D frames")
    h, w = a.shape
    limit = max(1, min(h, w) // 4) if max_shift_px is None else max_shift_px
    window = np.outer(np.hanning(h), np.hanning(w))

    def spectrum(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        return np.fft.rfft2((x - x.mean()) * window)

    ky = np.fft.fftfreq(h)[:, None]
    kx = np.fft.rfftfreq(w)[None, :]
    lowpass = np.exp(-2 * (np.pi * blur_px) ** 2 * (ky**2 + kx**2)) ** 2  # both frames blurred
    corr = np.fft.irfft2(np.conj(spectrum(a)) * spectrum(b) * lowpass, s=(h, w))
    dy = np.fft.fftfreq(h, 1 / h).astype(int)[:, None]
    dx = np.fft.fftfreq(w, 1 / w).astype(int)[None, :]
    corr = np.where((np.abs(dy) <= limit) & (np.abs(dx) <= limit), corr, -np.inf)
    iy, ix = np.unravel_index(int(np.argmax(corr)), corr.shape)
    return int(dy[iy, 0]), int(dx[0, ix])


def series_shifts(frames: Sequence[np.ndarray], max_shift_px: int | None = None
                  ) -> list[tuple[int, int]]:
    """The drift from each frame to the next (``len(frames) - 1`` shifts); frames of another
    shape than their neighbour get (0, 0)."""
    return [frame_shift(a, b, max_shift_px) if a.shape == b.shape else (0, 0)
            for a, b in zip(frames[:-1], frames[1:], strict=True)]

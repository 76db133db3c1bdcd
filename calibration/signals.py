"""Pure signal processing for calibration: step timing, responsive region, exposure drift.

Arrays: ``times_s`` ``(N,)`` monotonic seconds; ``levels`` ``(N,)`` mean brightness 0..255; stacks of
small grey frames ``(N, h, w)`` float32.
"""

from __future__ import annotations

import numpy as np


def step_latencies(times_s: np.ndarray, levels: np.ndarray,
                   events: list[tuple[float, bool]]) -> list[float]:
    """Latency (s) of each display step ``(t_shown, rising)`` seen in the camera signal.

    The camera "sees" a step when its brightness crosses half-way between the dark and bright
    levels; the crossing time is interpolated between the two frames around it, which removes the
    frame-period quantisation on average. Events whose crossing is not found before the next event
    are skipped.
    """
    times_s, levels = np.asarray(times_s, float), np.asarray(levels, float)
    lo, hi = np.percentile(levels, 5), np.percentile(levels, 95)
    if hi - lo < 5.0:
        return []  # the camera does not see the flashes at all
    mid = 0.5 * (lo + hi)
    out: list[float] = []
    for k, (t_shown, rising) in enumerate(events):
        t_end = events[k + 1][0] if k + 1 < len(events) else np.inf
        above = levels >= mid if rising else levels <= mid
        candidates = np.nonzero((times_s > t_shown) & (times_s < t_end) & above)[0]
        candidates = candidates[candidates > 0]
        if candidates.size == 0:
            continue
        i = int(candidates[0])
        if (levels[i - 1] >= mid) == rising:
            continue  # already on the far side before the step: no clean crossing
        frac = (mid - levels[i - 1]) / (levels[i] - levels[i - 1])
        t_cross = times_s[i - 1] + frac * (times_s[i] - times_s[i - 1])
        out.append(float(t_cross - t_shown))
    return out


def correlation_map(frames: np.ndarray, drive: np.ndarray) -> np.ndarray:
    """Per-pixel Pearson correlation ``(h, w)`` between the frames and the screen brightness."""
    x = frames.reshape(len(frames), -1).astype(np.float64)
    d = np.asarray(drive, float)
    x = x - x.mean(axis=0)
    d = d - d.mean()
    num = d @ x
    den = np.sqrt((x**2).sum(axis=0) * (d**2).sum()) + 1e-12
    return (num / den).reshape(frames.shape[1:]).astype(np.float32)


def response_slope(frames: np.ndarray, drive: np.ndarray) -> np.ndarray:
    """Per-pixel regression slope ``(h, w)`` of the frames on the screen brightness."""
    x = frames.reshape(len(frames), -1).astype(np.float64)
    d = np.asarray(drive, float) - np.mean(drive)
    return ((d @ (x - x.mean(axis=0))) / ((d**2).sum() + 1e-12)).reshape(frames.shape[1:])


def responsive_box(corr: np.ndarray, threshold: float = 0.5, slope: np.ndarray | None = None
                   ) -> tuple[tuple[int, int, int, int], float]:
    """Bounding box ``(x, y, w, h)`` of the largest region whose correlation exceeds the threshold.

    The threshold is ``max(0.3, threshold * max correlation)``; with ``slope`` (see
    :func:`response_slope`), pixels responding less than half as strongly as the typical responsive
    pixel are left out too (correlation alone is blind to scale). Returns the box and the mean
    correlation inside it. Raises ValueError when nothing responds.
    """
    import cv2

    peak = float(corr.max())
    if peak < 0.3:
        raise ValueError(f"no part of the camera frame follows the screen (best correlation "
                         f"{peak:.2f}); is the camera pointing at the lit surface?")
    mask = corr >= max(0.3, threshold * peak)
    if slope is not None:  # border pixels only partly on the lit surface: correlated but weak
        mask &= slope >= 0.5 * float(np.median(slope[mask]))
    mask = mask.astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n < 2:
        raise ValueError("the responsive region is too small to find")
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = (int(v) for v in stats[best, :4])
    return (x, y, w, h), float(corr[y:y + h, x:x + w].mean())


def drift_fraction(levels: np.ndarray, window: int = 5) -> float:
    """``(max - min) / mean`` of the moving-averaged signal: slow changes, not frame noise."""
    levels = np.asarray(levels, float)
    if levels.size < window:
        return 0.0
    smooth = np.convolve(levels, np.ones(window) / window, mode="valid")
    return float((smooth.max() - smooth.min()) / max(1e-9, abs(smooth.mean())))

"""Detector noise calibration from a user's own frames: gain and offset by a mean-variance fit.

A counting detector read out with gain ``g`` (counts per electron), offset ``o`` (counts) and
Gaussian read noise ``r`` (counts) gives, per pixel with ``e`` expected electrons,

    mean = o + g * e,        variance = g**2 * e + r**2 = g * (mean - o) + r**2

so over patches of different brightness the variance is a straight line in the mean with slope
``g`` (the photon-transfer curve). Patch statistics come from

- **pairs of frames** of the same field (``fit_noise`` with two or more frames): per pixel,
  ``(a - b)**2 / 2`` is an unbiased sample of the noise variance, whatever the specimen looks like.
  Pixels are grouped by brightness estimated from the *other* frames (three or more frames; with
  two, a 5x5 average), so that neither the bin means nor the variances are biased by the noise
  itself. This is the method to trust; structure (atom columns) cancels.
- **one frame**: the same binning with a spatial stand-in for the second frame. The noise
  sample is the residual of a pixel from the mean of the pixels above and below it (scaled by
  2/3 back to pixel variance): rows are scanned at different times, so afterglow and read noise
  correlated along the fast scan direction, which real HAADF frames show, do not shrink it.
  Pixels are ranked by the mean of a ring around them (9x9 without the central 3x3), whose
  noise is independent of both: ranking by the pixel's own neighbourhood would regress the
  variance on a noisy mean and flatten the line (at 0.05 e/px the old patch fit gave half the
  gain). Sharp structure still adds to the residual, so at high dose (~10 e/px) the gain from
  one frame can be high by tens of percent; prefer two frames.

The offset comes from a dark frame (beam blanked) or a dark region when given (its mean; its
variance is ``r**2``). Otherwise, at low dose most pixels received no electron: when one frame
shows that zero-electron peak (its mode, with a spread below it well under the pixels' noise
and under half of one electron's step) the offset is the peak and the read noise its spread,
and the gain is refitted through that point. Failing that, the offset is the line's intercept
assuming no read noise, which at low dose is off by ``r**2 / gain`` counts: give a dark frame
there. The result is a
:class:`NoiseCalibration`, saved as JSON and used by ``mcnn.stem.normalise`` and by the simulator
(``simulator_overrides``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mcnn.utils.atomic import atomic_path


class NoiseCalibration(BaseModel):
    """How a detector turns electrons into counts: ``counts = offset + gain * electrons + read``."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    gain_counts_per_e: float = Field(gt=0, description="Counts per detected electron.")
    offset_counts: float = Field(description="Counts with no electron (dark level).")
    read_noise_counts: float = Field(default=0.0, ge=0, description="Gaussian read noise std.")
    method: Literal["frame_pairs", "single_frame", "given"] = "given"
    offset_from: Literal["dark", "zero_peak", "intercept", "given"] = "given"
    patches: int = Field(default=0, ge=0,
                         description="Brightness bins kept in the mean-variance fit.")
    fit_r2: float | None = Field(default=None, description="R^2 of the mean-variance line.")
    sources: list[str] = Field(default_factory=list, description="Frames it was fitted on.")

    def electrons(self, counts: np.ndarray) -> np.ndarray:
        """Counts -> electrons per pixel, ``(counts - offset) / gain`` (float32)."""
        return ((np.asarray(counts, np.float64) - self.offset_counts)
                / self.gain_counts_per_e).astype(np.float32)

    def counts(self, electrons: np.ndarray) -> np.ndarray:
        """Electrons per pixel -> counts (the inverse of ``electrons``), float32."""
        return (np.asarray(electrons, np.float64) * self.gain_counts_per_e
                + self.offset_counts).astype(np.float32)

    @property
    def read_noise_measured(self) -> bool:
        """True when ``read_noise_counts`` was measured (dark frame, zero-electron peak) or typed
        in; a fit without either assumes 0."""
        if self.offset_from == "given":
            return "read_noise_counts" in self.model_fields_set
        return self.offset_from in ("dark", "zero_peak")

    def simulator_overrides(self) -> dict[str, float]:
        """StemConfig fields that make the simulator's detector noise match this detector (none
        when the read noise was only assumed)."""
        if not self.read_noise_measured:
            return {}
        return {"detector_noise_e": min(self.read_noise_counts / self.gain_counts_per_e, 100.0)}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(self.model_dump_json(indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> NoiseCalibration:
        """Read a calibration JSON; a bad file is a one-line ValueError naming it."""
        path = Path(path)
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except FileNotFoundError:
            raise ValueError(f"{path}: no such calibration file") from None
        except ValidationError as exc:
            fields = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}"
                               for e in exc.errors())
            raise ValueError(f"{path}: not a noise calibration JSON ({fields})") from None
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"{path}: not a noise calibration JSON ({first})") from None


MAX_OFFSET_ERROR = 0.15
"""An offset from the mean-variance intercept is used only when its standard error is within this
fraction of the mean signal (frames with structure: 0.004-0.09, the shared DM3 and SER 0.035 and
0.039; flat fields 0.19 to 200x the signal)."""

_MAX_FIT_PIXELS = 2**18  # single-frame statistics use at most about this many pixels


def _box_mean(x: np.ndarray, size: int) -> np.ndarray:
    """Mean of the centred ``size`` x ``size`` box around each pixel (edges mirrored, as
    numpy's "reflect" pads)."""
    from scipy.ndimage import uniform_filter

    return uniform_filter(x, size, mode="mirror")


def _binned_stats(rank: np.ndarray, mean_img: np.ndarray, sq_noise: np.ndarray, bins: int = 32
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Pixels grouped into equal-count bins by ``rank``: per bin the mean of ``mean_img`` and of
    ``sq_noise`` (an unbiased per-pixel variance sample). Ranking by an independent estimate keeps
    both averages unbiased (no regression dilution from noisy means)."""
    order = np.argsort(rank.ravel())  # introsort: 6x faster than a stable sort on 1M pixels
    n = order.size
    sizes = np.full(bins, n // bins) + (np.arange(bins) < n % bins)  # as np.array_split
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    m = np.add.reduceat(mean_img.ravel()[order], starts) / sizes
    v = np.add.reduceat(sq_noise.ravel()[order], starts) / sizes
    return m, v


def _vertical_residual(x: np.ndarray) -> np.ndarray:
    """x minus the mean of the pixels above and below, scaled to the pixel's noise variance
    (white noise: Var = s^2 (1 + 1/2) -> divided by sqrt(3/2)). Rows are scanned at different
    times, so noise correlated along the fast scan (afterglow, detector bandwidth) stays out."""
    p = np.pad(x, ((1, 1), (0, 0)), mode="reflect")
    return (x - (p[:-2] + p[2:]) / 2) / math.sqrt(1.5)


def _ring_mean(x: np.ndarray, inner: int = 3, outer: int = 9) -> np.ndarray:
    """Mean of the ``outer`` box around each pixel without the ``inner`` box: a brightness
    estimate whose noise is independent of the pixel and of its vertical neighbours."""
    return ((_box_mean(x, outer) * outer**2 - _box_mean(x, inner) * inner**2)
            / (outer**2 - inner**2))


def _half_sample_mode(values: np.ndarray) -> float:
    """The densest point of a sample (Bickel's half-sample mode): robust to a long upper tail."""
    flat = values.ravel()
    x = np.sort(flat[:: max(1, flat.size // _MAX_FIT_PIXELS)])
    while x.size > 3:
        n = (x.size + 1) // 2
        i = int(np.argmin(x[n - 1:] - x[: x.size - n + 1]))
        x = x[i: i + n]
    return float(x[1] if x.size == 3 else x.mean())


def zero_electron_peak(frame: np.ndarray) -> tuple[float, float, float]:
    """(mode, spread below it, share of pixels below it) of a frame's values. At low dose the
    mode is the zero-electron level (the offset) and the spread below it is the read noise
    (from the median distance of the lower half: 0.6745 sigma for a Gaussian)."""
    values = np.asarray(frame, np.float64).ravel()
    mode = _half_sample_mode(values)
    below = values[values < mode]
    spread = float(np.median(mode - below)) / 0.6745 if below.size else 0.0
    return mode, spread, below.size / max(values.size, 1)


def _robust_line(m: np.ndarray, v: np.ndarray) -> tuple[float, float, float, int, float]:
    """``v = a m + b`` by weighted least squares (a variance estimate's error grows with the
    variance: weights 1 / v), dropping outliers (> 3 robust sigma of the relative residual).
    Returns a, b, R^2, the bins kept and the standard error of the offset ``-b / a``."""
    keep = np.isfinite(m) & np.isfinite(v)
    a = b = 0.0
    scale = np.maximum(np.abs(v), np.median(np.abs(v[keep])) * 1e-3 + 1e-12)
    rounds = 4  # of dropping outliers; a fifth fit is the line of the bins finally kept
    for round_ in range(rounds + 1):
        if keep.sum() < 3:
            raise ValueError("too few usable patches for a mean-variance fit")
        a, b = np.polyfit(m[keep], v[keep], 1, w=1 / scale[keep])
        if round_ == rounds:
            break
        res = (v - (a * m + b)) / scale
        mad = np.median(np.abs(res[keep] - np.median(res[keep]))) * 1.4826 + 1e-12
        new = keep & (np.abs(res) < 3 * mad)
        if new.sum() == keep.sum():
            break
        keep = new
    pred = a * m[keep] + b  # R^2 unweighted, for humans
    ss_tot = float(((v[keep] - v[keep].mean()) ** 2).sum()) or 1.0
    r2 = 1.0 - float(((v[keep] - pred) ** 2).sum()) / ss_tot
    return float(a), float(b), r2, int(keep.sum()), _offset_error(m[keep], v[keep],
                                                                   scale[keep], a, b)


def _offset_error(m: np.ndarray, v: np.ndarray, scale: np.ndarray, a: float, b: float) -> float:
    """Standard error of the offset ``-b / a`` of a weighted line fit (covariance from the
    residuals, propagated to the ratio): large when the bins span too little brightness to fix
    the intercept, as on a flat field."""
    if len(m) < 3 or not a > 0:
        return math.inf
    w = 1 / scale
    design = np.stack([m * w, w], axis=1)
    chi2 = float(np.sum(((v - (a * m + b)) * w) ** 2)) / (len(m) - 2)
    try:
        cov = np.linalg.inv(design.T @ design) * chi2
    except np.linalg.LinAlgError:
        return math.inf
    var = cov[1, 1] / a**2 + b**2 * cov[0, 0] / a**4 - 2 * b * cov[0, 1] / a**3
    return math.sqrt(max(float(var), 0.0))


def fit_noise(
    frames: Sequence[np.ndarray],
    *,
    dark: np.ndarray | Sequence[np.ndarray] | None = None,
    ring_px: int = 9,
    sources: Sequence[str] = (),
) -> NoiseCalibration:
    """Gain, offset and read noise from raw frames (counts, ``(H, W)`` each) of one detector.

    Two or more frames of the same shape are used as consecutive pairs; one frame uses its
    vertical residual, ranked by a ``ring_px`` ring around each pixel (see the module
    docstring). ``dark`` (one dark frame, several, or the pixels of a dark region) gives the
    offset and read noise.
    """
    arrays = [np.asarray(f, np.float64) for f in frames]
    if not arrays:
        raise ValueError("no frames to calibrate on")
    same = len(arrays) >= 2 and all(a.shape == arrays[0].shape for a in arrays)
    means, variances = [], []
    method: Literal["frame_pairs", "single_frame"]
    offset_from: Literal["dark", "intercept"]
    if same:
        stack = np.stack(arrays)
        total = stack.sum(0)
        for k in range(len(arrays) - 1):
            a, b = stack[k], stack[k + 1]
            if len(arrays) >= 3:  # rank pixels by frames whose noise is independent of this pair
                rank = (total - a - b) / (len(arrays) - 2)
            else:
                rank = _box_mean((a + b) / 2, 5)
            m, v = _binned_stats(rank, (a + b) / 2, (a - b) ** 2 / 2)
            means.append(m)
            variances.append(v)
        method = "frame_pairs"
    else:
        for a in arrays:
            if min(a.shape) < 3 * ring_px:
                raise ValueError(f"a frame of {a.shape[0]}x{a.shape[1]} px is too small for a "
                                 f"single-frame noise fit (at least {3 * ring_px} px a side)")
            rank, noise = _ring_mean(a, 3, ring_px), _vertical_residual(a) ** 2
            step = max(1, a.size // _MAX_FIT_PIXELS)  # a regular subset: as good, and fast
            m, v = _binned_stats(rank.ravel()[::step], a.ravel()[::step], noise.ravel()[::step])
            means.append(m)
            variances.append(v)
        method = "single_frame"
    m, v = np.concatenate(means), np.concatenate(variances)
    gain, intercept, r2, used, offset_error = _robust_line(m, v)
    if not gain > 0 or not np.median(v) > 1e-12 * max(float(np.median(np.abs(m))), 1.0):
        raise ValueError(f"variance does not grow with the mean (slope {gain:.3g}); these frames "
                         "are not raw detector counts (already processed or scaled?) or show too "
                         "little brightness range to fit (a flat field)")
    zero = zero_electron_peak(arrays[0]) if method == "single_frame" and dark is None else None
    if zero is not None and zero[2] >= 0.05 and (
            zero[1] ** 2 < 0.5 * float(np.mean(v)) or gain > 2.5 * zero[1]):
        # A zero-electron peak (its spread well below the pixels' noise, or below the fitted
        # step of one electron): offset and read noise from it, the gain through that point
        # (weighted as _robust_line weights the variances; on a field of even brightness this
        # is the pooled variance over the mean signal).
        offset, read = zero[0], zero[1]
        w = 1 / np.maximum(v, read**2 + 1e-12)
        through = float(np.sum(w * (m - offset) * (v - read**2)) / np.sum(w * (m - offset) ** 2))
        if through > 2.5 * read:  # one electron's step stands clear of the peak
            return NoiseCalibration(
                gain_counts_per_e=through, offset_counts=offset, read_noise_counts=read,
                method=method, offset_from="zero_peak", patches=used, fit_r2=r2,
                sources=list(sources),
            )
    frames_mean = float(np.mean([a.mean() for a in arrays]))
    if dark is not None:
        darks = [np.asarray(d, np.float64) for d in (dark if isinstance(dark, (list, tuple))
                                                     else [dark])]
        offset = float(np.mean([d.mean() for d in darks]))
        if not offset < frames_mean:
            raise ValueError(f"the dark frame(s) average {offset:.6g} counts, not below the "
                             f"frames' {frames_mean:.6g}: not a dark frame (beam blanked)")
        if len(darks) >= 2 and darks[0].shape == darks[1].shape:
            read_var = float(np.var((darks[0] - darks[1]) / math.sqrt(2)))
        else:
            read_var = float(np.mean([d.var() for d in darks]))
        offset_from = "dark"
    else:
        offset = -intercept / gain  # read noise assumed small next to shot noise
        signal = frames_mean - offset
        if not offset_error <= MAX_OFFSET_ERROR * abs(signal):
            raise ValueError(
                f"these frames do not fix the detector offset: the mean-variance intercept gives "
                f"{offset:.6g} +- {offset_error:.2g} counts against a signal of {signal:.3g} (too "
                "little brightness range, e.g. a flat field); give a dark frame or a calibration")
        read_var = 0.0
        offset_from = "intercept"
    return NoiseCalibration(
        gain_counts_per_e=gain, offset_counts=offset, read_noise_counts=math.sqrt(max(read_var, 0)),
        method=method, offset_from=offset_from, patches=used, fit_r2=r2, sources=list(sources),
    )

"""A STEM frame resampled to the pixel size a model was trained at, and the output brought back.

A model trained on simulated frames at ``pixel_size_pm`` has learnt how wide an atom column is in
pixels and how much shot noise a pixel carries at a given dose. A frame recorded at another pixel
size is brought onto the model's grid first, keeping the physics:

- **electrons per unit area are kept.** A frame in electrons per pixel resampled from pixel size
  ``p_in`` to ``p_model`` is a mean-preserving interpolation scaled by the area ratio,
  ``(p_model / p_in)^2`` (exactly: input pixels / output pixels, so the field's electron total is
  unchanged after the output size is rounded to whole pixels);
- **downsampling averages** (``p_model > p_in``): an integer factor that divides the frame is area
  binning, which sums Poisson counts, so the binned frame is exactly Poisson at the larger dose
  (variance == mean, as the model saw in training); other factors use antialiased bilinear
  interpolation (each output pixel a weighted mean over its footprint: the noise is slightly
  correlated, less than without antialiasing, where whole pixels would be skipped);
- **upsampling** (``p_model < p_in``) is bilinear: it correlates the noise between neighbouring
  pixels, which the simulator never produces; allowed, but a caller should say so.

Model units (electrons / dose) are relative, so they move between grids by a mean-preserving
interpolation alone: the network output comes back to the input's exact ``(H, W)`` with
:meth:`FrameResampling.to_input`. Arrays are ``(H, W)``; sizes and factors are ``(y, x)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mcnn.stem.normalise import MIN_FRAME_PX

MAX_MODEL_PIXELS = 2**27
"""The most pixels a frame may have on the model's grid (16384 x 8192; 512 MiB as float32): a
frame whose pixels are far coarser than the model's would otherwise be upsampled past memory."""


def resampled_shape(
    shape_hw: tuple[int, int], factor_yx: tuple[float, float], min_px: int = MIN_FRAME_PX
) -> tuple[int, int]:
    """``round(H * factor_y), round(W * factor_x)``; a side below ``min_px`` is a ValueError (one
    line naming both sizes), since such a frame holds too little to denoise."""
    h, w = (max(1, round(n * f)) for n, f in zip(shape_hw, factor_yx, strict=True))
    if min(h, w) < min_px:
        raise ValueError(f"a {shape_hw[0]} x {shape_hw[1]} px frame resampled by "
                         f"{factor_yx[0]:.3g} x {factor_yx[1]:.3g} (y x) would be {h} x {w} px, "
                         f"smaller than {min_px} px")
    if h * w > MAX_MODEL_PIXELS:
        raise ValueError(f"a {shape_hw[0]} x {shape_hw[1]} px frame resampled by "
                         f"{factor_yx[0]:.3g} x {factor_yx[1]:.3g} (y x) would be {h} x {w} px, "
                         f"more than {MAX_MODEL_PIXELS} px: its pixels are far coarser than the "
                         "model's; use a model trained at about the frames' pixel size")
    return h, w


def _integer_bin(shape_in: tuple[int, int], shape_out: tuple[int, int]) -> tuple[int, int] | None:
    """(ky, kx) when ``shape_out`` is ``shape_in`` binned by whole factors (>= 1, not both 1)."""
    k = tuple(n // m for n, m in zip(shape_in, shape_out, strict=True))
    if all(kk >= 1 and m * kk == n for kk, n, m in zip(k, shape_in, shape_out, strict=True)) \
            and max(k) > 1:
        return k[0], k[1]
    return None


def resample_mean(image: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """``image (H, W)`` on a grid of ``shape_hw`` covering the same field, keeping the local mean
    (for intensities per pixel in relative units). Whole-factor binning where it fits exactly,
    antialiased bilinear otherwise; float64 inside, the input's float dtype out (float32 for
    integers)."""
    a = np.asarray(image)
    out_dtype = a.dtype if np.issubdtype(a.dtype, np.floating) else np.dtype(np.float32)
    shape_in = (int(a.shape[0]), int(a.shape[1]))
    shape_hw = (int(shape_hw[0]), int(shape_hw[1]))
    if shape_in == shape_hw:
        return a.astype(out_dtype, copy=True)
    k = _integer_bin(shape_in, shape_hw)
    if k is not None:
        ky, kx = k
        binned = a.astype(np.float64).reshape(shape_hw[0], ky, shape_hw[1], kx).mean(axis=(1, 3))
        return binned.astype(out_dtype)
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))[None, None]
    down = shape_hw[0] < shape_in[0] or shape_hw[1] < shape_in[1]
    y = F.interpolate(t, size=shape_hw, mode="bilinear", align_corners=False, antialias=down)
    return y[0, 0].numpy().astype(out_dtype)


@dataclass(frozen=True)
class FrameResampling:
    """How frames of one shape and pixel size move to a model's pixel size and back.

    ``factor_yx`` is ``p_in / p_model`` per axis (0.5: half as many pixels, twice as big), the
    model grid is ``resampled_shape(shape_in_px, factor_yx)``.
    """

    shape_in_px: tuple[int, int]
    pixel_size_in_pm_yx: tuple[float, float]
    pixel_size_model_pm: float
    shape_model_px: tuple[int, int]

    @classmethod
    def between(cls, shape_hw: tuple[int, int], pixel_size_in_pm_yx: tuple[float, float],
                pixel_size_model_pm: float, min_px: int = MIN_FRAME_PX) -> FrameResampling:
        """The resampling of ``shape_hw`` frames at ``pixel_size_in_pm_yx`` to the model's grid."""
        if not (pixel_size_model_pm > 0 and min(pixel_size_in_pm_yx) > 0):
            raise ValueError(f"pixel sizes must be > 0, got {pixel_size_in_pm_yx} pm (y x) and "
                             f"{pixel_size_model_pm} pm")
        shape_in = (int(shape_hw[0]), int(shape_hw[1]))
        factor = (pixel_size_in_pm_yx[0] / pixel_size_model_pm,
                  pixel_size_in_pm_yx[1] / pixel_size_model_pm)
        return cls(shape_in, (float(pixel_size_in_pm_yx[0]), float(pixel_size_in_pm_yx[1])),
                   float(pixel_size_model_pm), resampled_shape(shape_in, factor, min_px))

    @property
    def factor_yx(self) -> tuple[float, float]:
        """Nominal ``p_in / p_model`` per axis (before rounding to whole pixels)."""
        return (self.pixel_size_in_pm_yx[0] / self.pixel_size_model_pm,
                self.pixel_size_in_pm_yx[1] / self.pixel_size_model_pm)

    @property
    def identity(self) -> bool:
        """True when the model grid is the input grid (nothing to do)."""
        return self.shape_model_px == self.shape_in_px

    @property
    def upsamples(self) -> bool:
        """True when the model grid has more pixels along an axis (noise becomes correlated)."""
        return any(m > n for m, n in zip(self.shape_model_px, self.shape_in_px, strict=True))

    @property
    def pixel_size_model_grid_pm_yx(self) -> tuple[float, float]:
        """The model grid's actual pixel size (the field over the rounded pixel count), pm."""
        return (self.pixel_size_in_pm_yx[0] * self.shape_in_px[0] / self.shape_model_px[0],
                self.pixel_size_in_pm_yx[1] * self.shape_in_px[1] / self.shape_model_px[1])

    @property
    def electrons_scale(self) -> float:
        """Electrons per model pixel / electrons per input pixel at the same place: the area
        ratio ``(p_model / p_in)^2``, taken from the whole-pixel sizes so the field's electron
        total is exactly kept."""
        (h, w), (hm, wm) = self.shape_in_px, self.shape_model_px
        return (h * w) / (hm * wm)

    def _check(self, image: np.ndarray, shape: tuple[int, int], grid: str) -> None:
        if tuple(image.shape) != shape:
            raise ValueError(f"frame of {image.shape[0]} x {image.shape[1]} px; this resampling "
                             f"expects {shape[0]} x {shape[1]} px ({grid} grid)")

    def electrons_to_model(self, electrons: np.ndarray) -> np.ndarray:
        """Electrons per input pixel ``(H, W)`` -> electrons per model pixel (area kept)."""
        self._check(electrons, self.shape_in_px, "input")
        if self.identity:
            return np.asarray(electrons, np.float64).copy()
        return resample_mean(np.asarray(electrons, np.float64), self.shape_model_px) \
            * self.electrons_scale

    def to_model(self, image: np.ndarray) -> np.ndarray:
        """A relative image (model units) on the input grid -> on the model grid (mean kept)."""
        self._check(image, self.shape_in_px, "input")
        return resample_mean(image, self.shape_model_px)

    def to_input(self, image: np.ndarray) -> np.ndarray:
        """A relative image (the network output, model units) on the model grid -> exactly the
        input's ``(H, W)`` (mean kept)."""
        self._check(image, self.shape_model_px, "model")
        return resample_mean(image, self.shape_in_px)


def resample_electrons(
    electrons: np.ndarray, pixel_size_in_pm: float | tuple[float, float], pixel_size_out_pm: float,
    min_px: int = MIN_FRAME_PX,
) -> np.ndarray:
    """Electrons per pixel ``(H, W)`` at ``pixel_size_in_pm`` (one value or ``(y, x)``) ->
    electrons per pixel at ``pixel_size_out_pm``, keeping electrons per unit area."""
    p = (pixel_size_in_pm, pixel_size_in_pm) if isinstance(pixel_size_in_pm, (int, float)) \
        else pixel_size_in_pm
    if not all(math.isfinite(v) for v in (*p, pixel_size_out_pm)):
        raise ValueError(f"pixel sizes must be finite, got {p} and {pixel_size_out_pm} pm")
    grid = FrameResampling.between(np.shape(electrons)[:2], (float(p[0]), float(p[1])),
                                   pixel_size_out_pm, min_px)
    return grid.electrons_to_model(electrons)

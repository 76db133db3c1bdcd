"""Small tensor helpers shared by the simulators and content sources.

All functions take and return ``(B, C, H, W)`` float32 tensors and draw randomness only from the
``torch.Generator`` they are given, so that every simulated example is reproducible from its seed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel1d(sigma_px: float) -> torch.Tensor:
    """Normalised 1-D Gaussian of standard deviation ``sigma_px``, truncated at 3 sigma."""
    radius = max(1, math.ceil(3.0 * sigma_px))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / max(sigma_px, 1e-6)) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(x: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Separable Gaussian blur with replicate padding (edges extend, so borders do not darken)."""
    if sigma_px <= 0:
        return x
    b, c, h, w = x.shape
    kernel = gaussian_kernel1d(sigma_px).to(x)
    r = kernel.numel() // 2
    y = x.reshape(b * c, 1, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), kernel.view(1, 1, -1, 1))
    return y.reshape(b, c, h, w)


def normalize_per_image(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Stretch each ``(b, c)`` image to span [0, 1] (a constant image becomes 0.5)."""
    flat = x.flatten(2)
    lo = flat.amin(dim=2, keepdim=True)
    hi = flat.amax(dim=2, keepdim=True)
    span = hi - lo
    out = torch.where(span > eps, (flat - lo) / span.clamp_min(eps), torch.full_like(flat, 0.5))
    return out.view_as(x)


def power_law_field(
    batch: int,
    channels: int,
    size: tuple[int, int],
    beta: torch.Tensor | float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Gaussian random field whose power spectrum falls as ``1 / f**beta``, scaled to [0, 1].

    ``beta`` is a float or a ``(batch,)`` tensor: 0 is white noise, ~2 looks like natural images,
    >3 gives smooth blobs. The field is periodic (made with an FFT).
    """
    h, w = size
    noise = torch.randn(batch, channels, h, w, generator=generator)
    fy = torch.fft.fftfreq(h).view(h, 1)
    fx = torch.fft.rfftfreq(w).view(1, w // 2 + 1)
    f = torch.sqrt(fy**2 + fx**2)
    f[0, 0] = 1.0 / max(h, w)  # keep the mean finite; normalisation removes it anyway
    beta_t = torch.as_tensor(beta, dtype=torch.float32).reshape(-1, 1, 1, 1)
    amplitude = f.unsqueeze(0).unsqueeze(0) ** (-beta_t / 2.0)
    field = torch.fft.irfft2(torch.fft.rfft2(noise) * amplitude, s=(h, w))
    return normalize_per_image(field)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize to ``size = (H, W)``: area averaging when shrinking, bilinear when growing."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if size[0] <= x.shape[-2] and size[1] <= x.shape[-1]:
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def uniform(
    batch: int, low: float, high: float, generator: torch.Generator, log: bool = False
) -> torch.Tensor:
    """``(batch,)`` draws from U(low, high), or log-uniform when ``log`` (for scale-like values)."""
    u = torch.rand(batch, generator=generator)
    if log:
        return torch.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return low + u * (high - low)


def row_rotation(theta: float) -> torch.Tensor:
    """``(2, 2)`` matrix that rotates row vectors ``(x, y)`` by ``theta`` rad: ``v @ R``."""
    return torch.tensor([[math.cos(theta), math.sin(theta)],
                         [-math.sin(theta), math.cos(theta)]])


def pad_columns(frames: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per frame ``(points (S_b, 2), weights (S_b,))`` -> ``(B, S, 2)`` and ``(B, S)``, zero-padded
    to the longest frame (``S`` at least 1): padding has weight 0, so it draws nothing."""
    s = max(1, max(p.shape[0] for p, _ in frames))
    points = torch.zeros(len(frames), s, 2)
    weights = torch.zeros(len(frames), s)
    for b, (p, w) in enumerate(frames):
        points[b, : p.shape[0]] = p
        weights[b, : w.shape[0]] = w
    return points, weights

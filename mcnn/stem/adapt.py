"""Self-supervised adaptation of a simulator-trained denoiser to a user's own frames.

Real frames have no clean targets, but their noise is independent from frame to frame and, across
rows, from pixel to pixel (Poisson counting); along a row it is often correlated over a few pixels
(detector afterglow and bandwidth: lag-1 correlations of 0.3-0.5 in real HAADF frames). Two losses
use only noisy frames:

- ``blind_spot`` (Noise2Self, Batson & Royer 2019): a random ~2% of pixels are replaced by a
  random neighbour before the forward pass, and the loss is the squared error between the output
  and the *original* noisy value at those pixels only. The network cannot see a masked pixel's
  own noise, so the minimum of this loss is the clean signal (plus the noise variance). Where
  the noise is correlated along rows, the row neighbours either side are hidden too (their span
  measured on the frames, ``row_noise_span``), as structured Noise2Void does.
- ``noise2noise`` (Lehtinen et al. 2018): between consecutive frames of a series of the same
  field, ``f(frame_k)`` is fitted to ``frame_{k+1}``; the expected target is the clean signal.
  Series drift, so each crop is paired with the crop of the next frame that shows the same
  field (``mcnn.stem.drift``).

Starting from simulator weights with a small learning rate and few steps adapts the model to the
microscope's structure and noise (pixel size, probe, dose, detector) without forgetting what the
simulator taught. Frames are in model units (``mcnn.stem.normalise.to_model_units``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mcnn.stem.drift import series_shifts

log = logging.getLogger(__name__)

Loss = Literal["blind_spot", "noise2noise"]


def _offset_index(n: int, offset: torch.Tensor, axis_view: tuple[int, ...]) -> torch.Tensor:
    """Indices ``i + offset`` along an axis of ``n``; where that leaves the frame, ``i - offset``
    (the offset mirrored, so a source never falls back onto the pixel's own row or column)."""
    i = torch.arange(n).view(axis_view)
    j = i + offset
    return torch.where((j < 0) | (j >= n), i - offset, j).clamp(0, n - 1)


def blind_spot_batch(
    x: torch.Tensor, fraction: float, generator: torch.Generator, span_px: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(masked input, mask)``; ``mask`` is 1 at the blind spots, where the loss is taken.
    ``x`` is (B, C, H, W).

    ``span_px=0``: each blind spot takes the value of a random one of its 8 neighbours (the
    opposite one at the border). ``span_px=k``: the blind spot *and* the k pixels either side of
    it along the row are replaced, each by a random pixel one or two rows above or below
    (Broaddus et al. 2020, structured Noise2Void): noise correlated along the fast scan
    (afterglow, detector bandwidth) would otherwise let the network read a blind spot's own
    noise off its row neighbours and learn to copy it."""
    b, c, h, w = x.shape
    mask = (torch.rand(b, 1, h, w, generator=generator) < fraction).to(x.dtype)
    if span_px > 0:
        offsets = torch.tensor([(dy, dx) for dy in (-2, -1, 1, 2) for dx in (-1, 0, 1)])
        kernel = torch.ones(1, 1, 1, 2 * span_px + 1, dtype=x.dtype)
        replaced = (F.conv2d(mask, kernel, padding=(0, span_px)) > 0).to(x.dtype)
    else:
        offsets = torch.tensor([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])
        replaced = mask
    pick = offsets[torch.randint(0, len(offsets), (b, h, w), generator=generator)]
    ys = _offset_index(h, pick[..., 0], (1, h, 1))
    xs = _offset_index(w, pick[..., 1], (1, 1, w))
    flat = (ys * w + xs).view(b, 1, h * w).expand(b, c, h * w)
    neighbour = torch.gather(x.reshape(b, c, h * w), 2, flat).view(b, c, h, w)
    return x * (1 - replaced) + neighbour * replaced, mask


def row_noise_span(frames: Sequence[np.ndarray], threshold: float = 0.1, max_span: int = 6
                   ) -> int:
    """How many pixels along a row the noise stays correlated: the smallest lag k whose
    correlation is below ``threshold`` minus one (0: white noise). Measured on the difference of
    adjacent rows, where the specimen mostly cancels and the rows' noises are independent."""
    diffs = [np.diff(np.asarray(f, np.float64), axis=0) for f in frames if min(f.shape) > 8]
    if not diffs:
        return 0
    for k in range(1, max_span + 2):
        num = sum(float(np.sum(d[:, :-k] * d[:, k:])) for d in diffs)
        den = sum(float(np.sum(d[:, :-k] ** 2) + np.sum(d[:, k:] ** 2)) / 2 for d in diffs)
        if not den > 0 or num / den < threshold:
            return k - 1
    return max_span


def _crops(frames: Sequence[np.ndarray], size: int, batch: int, generator: torch.Generator,
           shifts: Sequence[tuple[int, int]] | None = None
           ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Random crops (B, 1, size, size) from random frames; with ``shifts`` (the drift from each
    frame to the next, :func:`mcnn.stem.drift.series_shifts`) the crop of the next frame that
    shows the same field too."""
    n = len(frames) - (0 if shifts is None else 1)
    xs, ys = [], []
    for _ in range(batch):
        k = int(torch.randint(0, n, (1,), generator=generator))
        dy, dx = (0, 0) if shifts is None else shifts[k]
        h, w = frames[k].shape if shifts is None else np.minimum(frames[k].shape,
                                                                 frames[k + 1].shape)
        top_lo, top_hi = max(0, -dy), h - size - max(0, dy)
        left_lo, left_hi = max(0, -dx), w - size - max(0, dx)
        if top_hi < top_lo or left_hi < left_lo:  # drift too large for this crop: no shift
            dy, dx, top_lo, top_hi, left_lo, left_hi = 0, 0, 0, h - size, 0, w - size
        top = int(torch.randint(top_lo, top_hi + 1, (1,), generator=generator))
        left = int(torch.randint(left_lo, left_hi + 1, (1,), generator=generator))
        xs.append(frames[k][top:top + size, left:left + size])
        if shifts is not None:
            ys.append(frames[k + 1][top + dy:top + dy + size, left + dx:left + dx + size])
    x = torch.from_numpy(np.stack(xs)[:, None].astype(np.float32))
    y = torch.from_numpy(np.stack(ys)[:, None].astype(np.float32)) if shifts is not None else None
    return x, y


def adapt(
    model: nn.Module,
    frames: Sequence[np.ndarray],
    *,
    loss: Loss = "blind_spot",
    steps: int = 200,
    lr: float = 1e-4,
    crop_px: int = 64,
    batch: int = 8,
    mask_fraction: float = 0.02,
    span_px: int | None = None,
    align: bool = True,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> list[float]:
    """Fine-tune ``model`` in place on noisy ``frames`` ``(H, W)`` in model units; returns the
    loss per step. The model ends in eval mode. ``span_px`` (blind spot only): pixels either side
    of each blind spot along the row that are hidden too; None measures it on the frames
    (:func:`row_noise_span`). ``align`` (noise2noise only): pair each crop with the crop of the
    next frame that shows the same field, after the drift between them
    (:func:`mcnn.stem.drift.series_shifts`)."""
    if not frames:
        raise ValueError("no frames to adapt on")
    if loss == "noise2noise" and len(frames) < 2:
        raise ValueError("noise2noise needs at least 2 consecutive frames of the same field")
    size = min(crop_px, *(min(f.shape) for f in frames))
    multiple = getattr(getattr(model, "config", None), "size_multiple", 1)
    size -= size % multiple
    if size < multiple:
        raise ValueError(f"frames of {min(min(f.shape) for f in frames)} px are smaller than the "
                         f"model's size multiple {multiple}")
    if loss == "blind_spot" and span_px is None:
        span_px = row_noise_span(frames)
        log.info("blind spots hide %d px either side along the row (noise correlation measured "
                 "on the frames)", span_px)
    shifts: list[tuple[int, int]] | None = None
    if loss == "noise2noise":
        shifts = series_shifts(frames) if align else \
            [(0, 0)] * (len(frames) - 1)
        log.info("noise2noise pairs: drift between frames %s px", shifts[:8])
    g = torch.Generator().manual_seed(seed)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        x, y = _crops(frames, size, batch, g, shifts)
        x = x.to(device)
        if loss == "blind_spot":
            masked, mask = blind_spot_batch(x, mask_fraction, g, span_px or 0)
            out = model(masked)
            mask = mask.to(device)
            value = ((out - x) ** 2 * mask).sum() / mask.sum().clamp_min(1)
        else:
            assert y is not None
            value = F.mse_loss(model(x), y.to(device))
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        history.append(value.item())
    model.eval()
    log.info("adapted with %s for %d steps: loss %.4g -> %.4g", loss, steps,
             float(np.mean(history[: max(1, steps // 10)])),
             float(np.mean(history[-max(1, steps // 10):])))
    return history

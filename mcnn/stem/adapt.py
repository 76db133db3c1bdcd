"""Self-supervised adaptation of a simulator-trained denoiser to a user's own frames.

Real frames have no clean targets, but their noise is independent from pixel to pixel (Poisson
counting) and from frame to frame. Two losses use only noisy frames:

- ``blind_spot`` (Noise2Self, Batson & Royer 2019): a random ~2% of pixels are replaced by a
  random neighbour before the forward pass, and the loss is the squared error between the output
  and the *original* noisy value at those pixels only. The network cannot see a masked pixel's
  own noise, so the minimum of this loss is the clean signal (plus the noise variance).
- ``noise2noise`` (Lehtinen et al. 2018): between consecutive frames of a series of the same
  field, ``f(frame_k)`` is fitted to ``frame_{k+1}``; the expected target is the clean signal.

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

log = logging.getLogger(__name__)

Loss = Literal["blind_spot", "noise2noise"]


def blind_spot_batch(
    x: torch.Tensor, fraction: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(masked input, mask)``: each masked pixel takes the value of a random one of its 8
    neighbours (reflecting at the border); ``mask`` is 1 at masked pixels. ``x`` is (B, C, H, W)."""
    b, c, h, w = x.shape
    mask = (torch.rand(b, 1, h, w, generator=generator) < fraction).to(x.dtype)
    offsets = torch.tensor([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])
    pick = offsets[torch.randint(0, 8, (b, h, w), generator=generator)]  # (B, H, W, 2)
    ys = (torch.arange(h).view(1, h, 1) + pick[..., 0]).abs()
    xs = (torch.arange(w).view(1, 1, w) + pick[..., 1]).abs()
    ys = torch.where(ys >= h, 2 * (h - 1) - ys, ys)
    xs = torch.where(xs >= w, 2 * (w - 1) - xs, xs)
    flat = (ys * w + xs).view(b, 1, h * w).expand(b, c, h * w)
    neighbour = torch.gather(x.reshape(b, c, h * w), 2, flat).view(b, c, h, w)
    return x * (1 - mask) + neighbour * mask, mask


def _crops(frames: Sequence[np.ndarray], size: int, batch: int, generator: torch.Generator,
           pairs: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Random crops (B, 1, size, size) from random frames; with ``pairs`` the same crop of the
    next frame too."""
    n = len(frames) - (1 if pairs else 0)
    xs, ys = [], []
    for _ in range(batch):
        k = int(torch.randint(0, n, (1,), generator=generator))
        h, w = frames[k].shape
        top = int(torch.randint(0, h - size + 1, (1,), generator=generator))
        left = int(torch.randint(0, w - size + 1, (1,), generator=generator))
        xs.append(frames[k][top:top + size, left:left + size])
        if pairs:
            ys.append(frames[k + 1][top:top + size, left:left + size])
    x = torch.from_numpy(np.stack(xs)[:, None].astype(np.float32))
    y = torch.from_numpy(np.stack(ys)[:, None].astype(np.float32)) if pairs else None
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
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> list[float]:
    """Fine-tune ``model`` in place on noisy ``frames`` ``(H, W)`` in model units; returns the
    loss per step. The model ends in eval mode."""
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
    g = torch.Generator().manual_seed(seed)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        x, y = _crops(frames, size, batch, g, pairs=loss == "noise2noise")
        x = x.to(device)
        if loss == "blind_spot":
            masked, mask = blind_spot_batch(x, mask_fraction, g)
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

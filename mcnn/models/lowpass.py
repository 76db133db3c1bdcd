"""Fixed low-pass front layer for denoising: the network sees the input's local means up front.

The paper adds four channels made by fixed filters (a 5x5 box, a 7x7 box and two Gaussians of 15x15
or larger). The reference code's "Gaussians" are not Gaussians (a bug); ours follow the formula
``g(x, y) = exp(-(x^2 + y^2) / (2 sigma^2)) / sum``, which the tests check.
"""

# No `from __future__ import annotations` here: TorchScript reads the class-level buffer
# annotations and cannot resolve them as strings.
import math

import torch
import torch.nn.functional as F
from torch import nn

from mcnn.models.config import LowPassConfig


def box_kernel(size: int) -> torch.Tensor:
    return torch.full((size, size), 1.0 / (size * size))


def box_kernel_1d(size: int) -> torch.Tensor:
    """The 1-D factor of ``box_kernel``: ``box_kernel(s) == outer(v, v)``."""
    return torch.full((size,), 1.0 / size)


def gaussian_kernel_1d(sigma: float, min_size: int = 15) -> torch.Tensor:
    """The 1-D factor of ``gaussian_kernel``: ``gaussian_kernel(s) == outer(v, v)`` (float64)."""
    size = max(min_size, 2 * math.ceil(3 * sigma) + 1)
    size += 1 - size % 2
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return g / g.sum()


def gaussian_kernel(sigma: float, min_size: int = 15) -> torch.Tensor:
    """Normalised 2-D Gaussian, odd size >= max(min_size, 2*ceil(3 sigma)+1)."""
    size = max(min_size, 2 * math.ceil(3 * sigma) + 1)
    size += 1 - size % 2
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return (g / g.sum()).float()


class LowPassFront(nn.Module):
    """Per input channel: four filtered copies (two boxes, two Gaussians), concatenated or alone.

    Fixed filters (the default) run as a row pass then a column pass: boxes and Gaussians are
    separable, so a 15x15 filter costs 30 multiply-adds per pixel instead of 225 (at 512^2 on 2 CPU
    threads the front took longer than the rest of a quarter-width denoiser). In ``concat`` mode
    the input copy is one more (unit-impulse) filter of those passes, so the front is two
    convolutions and no concatenation: a ``torch.cat`` of a one-channel frame with channels_last
    features comes out NCHW, and the copies back to channels_last that follow cost a
    quarter-width denoiser ~15% of its time at 512^2. ``weight`` keeps the 2-D bank (checkpoints
    and the trainable option use it); the two paths agree to float32 rounding and the input copy
    is exact.
    """

    row: torch.Tensor
    col: torch.Tensor

    def __init__(self, in_channels: int, cfg: LowPassConfig) -> None:
        super().__init__()
        self.mode = cfg.mode
        self.in_channels = in_channels
        kernels = [box_kernel(s) for s in cfg.box_sizes_px] + [
            gaussian_kernel(s, cfg.min_gaussian_size_px) for s in cfg.gaussian_sigmas_px
        ]
        self.size = max(k.shape[-1] for k in kernels)
        bank = torch.zeros(len(kernels), self.size, self.size)
        for i, k in enumerate(kernels):
            o = (self.size - k.shape[-1]) // 2
            bank[i, o : o + k.shape[-1], o : o + k.shape[-1]] = k
        weight = bank[:, None].repeat(in_channels, 1, 1, 1)  # (C*4, 1, k, k), grouped per channel
        self.weight = nn.Parameter(weight, requires_grad=cfg.trainable)
        self.filters = len(kernels)
        self.separable = not cfg.trainable
        factors = [box_kernel_1d(s) for s in cfg.box_sizes_px] + [
            gaussian_kernel_1d(s, cfg.min_gaussian_size_px) for s in cfg.gaussian_sigmas_px
        ]
        line = torch.zeros(len(factors), self.size, dtype=torch.float64)
        for i, v in enumerate(factors):
            o = (self.size - v.shape[0]) // 2
            line[i, o : o + v.shape[0]] = v
        # Output channel order as the 2-D path: [inputs (concat mode)], then per input channel its
        # filters. The row pass is dense over input channels (zeros across them) so it can emit
        # that order; the column pass is depthwise.
        impulse = torch.zeros(self.size, dtype=torch.float64)
        impulse[self.size // 2] = 1.0
        copies = in_channels if self.mode == "concat" else 0
        n_out = copies + in_channels * len(factors)
        row = torch.zeros(n_out, in_channels, 1, self.size, dtype=torch.float64)
        col = torch.zeros(n_out, 1, self.size, 1, dtype=torch.float64)
        for c in range(in_channels):
            if copies:
                row[c, c, 0] = impulse
                col[c, 0, :, 0] = impulse
            for i in range(len(factors)):
                j = copies + c * len(factors) + i
                row[j, c, 0] = line[i]
                col[j, 0, :, 0] = line[i]
        # derived from the config, not state: old checkpoints load unchanged
        self.register_buffer("row", row.float(), persistent=False)
        self.register_buffer("col", col.float(), persistent=False)

    @property
    def out_channels(self) -> int:
        n = self.in_channels * self.filters
        return n + self.in_channels if self.mode == "concat" else n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.size // 2
        # replicate: valid for any size and branch-free, so exported graphs take any input size
        padded = F.pad(x, (p, p, p, p), mode="replicate")
        if self.separable:  # the input copy (concat mode) included
            rows = F.conv2d(padded, self.row.to(padded.dtype))
            return F.conv2d(rows, self.col.to(padded.dtype), groups=rows.shape[1])
        filtered = F.conv2d(padded, self.weight, groups=self.in_channels)
        return torch.cat([x, filtered], dim=1) if self.mode == "concat" else filtered

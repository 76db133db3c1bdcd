"""Multi-scale MAE: every output compared with the target reduced to that output's size.

The target is reduced by area averaging, which keeps exactly its low frequencies: a coarse output is
asked for the local mean of the truth, the easiest signal to learn first. Coarse output ``k`` (at
``1/2**k``) sits on the network's grid: its pixel ``j`` covers output pixels ``[j*2**k, (j+1)*2**k)``
of the input padded (replicate, bottom/right) to a multiple of ``2**depth``. So the target is padded
the same way, pooled in non-overlapping ``2**k`` blocks and cropped, never pooled with the
overlapping windows ``adaptive_avg_pool2d`` uses when a size is not divisible by ``2**k``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mcnn.losses.config import BranchScheduleConfig


def area_reduce(target: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``target`` (B, C, H, W) reduced to ``size`` = ``ceil((H, W) / 2**k)`` by ``2**k`` block means.

    The block grid starts at the top-left corner; the last partial block is completed by replicating
    the target's edge, as the network pads its input.
    """
    h, w = target.shape[-2:]
    if (h, w) == tuple(size):
        return target
    factor = 1
    while -(-h // factor) > size[0] or -(-w // factor) > size[1]:
        factor *= 2
    if (-(-h // factor), -(-w // factor)) != tuple(size):
        raise ValueError(
            f"output size {tuple(size)} is not the target size {(h, w)} divided by a power of 2"
        )
    padded = F.pad(target, [0, (-w) % factor, 0, (-h) % factor], mode="replicate")
    return F.avg_pool2d(padded, factor)


def _expand(weights: Sequence[float], n: int) -> list[float]:
    w = list(weights)
    return (w + [w[-1]] * n)[:n]


class BranchWeightSchedule:
    """Weights of ``[full, 1/2, 1/4, ...]`` at a given training step. The full term never vanishes."""

    def __init__(self, cfg: BranchScheduleConfig, n_outputs: int, total_steps: int) -> None:
        self.cfg = cfg
        self.n = n_outputs
        self.end_step = cfg.end_step or max(total_steps, cfg.begin_step + 1)
        if cfg.kind == "coarse_to_fine":
            # Start: weight doubles with each coarser level; end: full-resolution output only.
            start = cfg.start or [2.0**k for k in range(n_outputs)]
            end = cfg.end or [1.0] + [0.0] * (n_outputs - 1)
        else:
            start = cfg.start or [1.0] * n_outputs
            end = cfg.end or start
        self.start = _expand(start, n_outputs)
        self.end = _expand(end, n_outputs) if cfg.kind != "constant" else self.start
        if self.start[0] <= 0 and self.end[0] <= 0:
            raise ValueError("branch_schedule: the full-resolution weight (first entry) must be > 0")

    def __call__(self, step: int) -> list[float]:
        span = self.end_step - self.cfg.begin_step
        t = min(max((step - self.cfg.begin_step) / span, 0.0), 1.0)
        w = [a + (b - a) * t for a, b in zip(self.start, self.end, strict=True)]
        if w[0] <= 0:  # keep the full-resolution term present throughout
            w[0] = 1e-3 * max(max(w), 1.0)
        total = sum(w)
        return [v / total for v in w]


class MultiScaleL1Loss(nn.Module):
    """Weighted sum of per-output MAEs; returns the total and each term (for logging)."""

    def forward(
        self, outputs: Sequence[torch.Tensor], target: torch.Tensor, weights: Sequence[float]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if len(weights) != len(outputs):
            raise ValueError(f"{len(outputs)} outputs but {len(weights)} weights")
        terms = [F.l1_loss(o, area_reduce(target, o.shape[-2:]).to(o.dtype)) for o in outputs]
        total = weights[0] * terms[0]
        for w, t in zip(weights[1:], terms[1:], strict=True):
            total = total + w * t
        return total, terms

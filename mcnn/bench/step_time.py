"""Training step time of one network on a synthetic batch: the cost of the side outputs, isolated.

One step = ``forward_multiscale`` + multi-scale MAE + backward + Adam step (``branches=0`` gives just
the full-resolution output, so the plain U-Net runs the same code). Synthetic ``(B, C, H, W)``
float32 input and target; warm-up steps; median over timed steps.
"""

from __future__ import annotations

import contextlib
import statistics
from typing import Any

import torch

from mcnn.bench.speed import time_calls
from mcnn.losses import MultiScaleL1Loss
from mcnn.models import MCNN, ModelConfig


def training_step_ms(
    config: ModelConfig,
    size: int,
    batch: int,
    device: torch.device,
    *,
    seconds: float = 2.0,
    warmup: int = 3,
    min_repeats: int = 5,
    bf16: bool | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Median and min ms per training step; bf16 autocast by default on CUDA only (as the trainer)."""
    bf16 = device.type == "cuda" if bf16 is None else bf16
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = MCNN(config).to(device, memory_format=fmt).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = MultiScaleL1Loss()
    n_out = config.branches + 1
    weights = [1.0 / n_out] * n_out
    x = torch.randn(batch, config.in_channels, size, size, generator=gen).to(device)
    s = config.output_scale
    y = torch.rand(batch, config.out_channels, size * s, size * s, generator=gen).to(device)
    x = x.contiguous(memory_format=fmt)

    def step() -> None:
        ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            outputs = model.forward_multiscale(x)
        loss, _ = loss_fn([o.float() for o in outputs], y, weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    times = time_calls(step, device, seconds=seconds, warmup=warmup, min_repeats=min_repeats)
    return {
        "ms_median": round(statistics.median(times) * 1e3, 3),
        "ms_min": round(min(times) * 1e3, 3),
        "repeats": len(times),
        "bf16": bf16,
    }

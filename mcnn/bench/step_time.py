"""Training step time of one network on a synthetic batch: the cost of the side outputs, isolated.

One step = ``forward_multiscale`` + multi-scale MAE + backward + Adam step (``branches=0`` gives just
the full-resolution output, so the plain U-Net runs the same code). Synthetic ``(B, C, H, W)``
float32 input and target; warm-up steps; spread over timed steps (``mcnn.bench.timing``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

from mcnn.bench.timing import time_calls, time_interleaved, time_stats
from mcnn.losses import MultiScaleL1Loss
from mcnn.models import MCNN, ModelConfig


def make_training_step(
    config: ModelConfig, size: int, batch: int, device: torch.device, *,
    bf16: bool | None = None, seed: int = 0,
) -> tuple[Callable[[], None], bool]:
    """A closure running one training step, and whether it uses bf16 autocast (by default on CUDA
    only, as the trainer)."""
    bf16 = device.type == "cuda" if bf16 is None else bf16
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = MCNN(config).to(device, memory_format=fmt).train()  # type: ignore[call-overload]
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

    return step, bf16


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
    """ms per training step (median, p10, p90, min, max) and the number of timed steps."""
    step, bf16 = make_training_step(config, size, batch, device, bf16=bf16, seed=seed)
    times = time_calls(step, device, seconds=seconds, warmup=warmup, min_repeats=min_repeats)
    stats = time_stats(times)
    return {k: v for k, v in stats.items() if k.startswith("ms_") or k == "repeats"} | {"bf16": bf16}


def compare_training_steps(
    configs: dict[str, ModelConfig], baseline: str, size: int, batch: int, device: torch.device,
    *, seconds: float = 2.0, warmup: int = 3, rounds: int = 5, seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Step time of each network, measured interleaved with the ``baseline`` network, and its ratio
    to the baseline's median (``ratio_to_baseline``; 1.08 = 8 % slower per step)."""
    if baseline not in configs:
        raise ValueError(f"baseline {baseline!r} is not among {sorted(configs)}")
    steps = {}
    bf16 = False
    for name, cfg in configs.items():
        steps[name], bf16 = make_training_step(cfg, size, batch, device, seed=seed)
    times = time_interleaved(steps, device, seconds=seconds, warmup=warmup, rounds=rounds)
    out: dict[str, dict[str, Any]] = {}
    for name, ts in times.items():
        stats = time_stats(ts)
        out[name] = {k: v for k, v in stats.items() if k.startswith("ms_") or k == "repeats"}
        out[name]["bf16"] = bf16
    base = out[baseline]["ms_median"]
    for entry in out.values():
        entry["ratio_to_baseline"] = round(entry["ms_median"] / base, 4)
    return out

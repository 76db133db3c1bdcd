"""Inference speed: frames per second of ``MCNN.forward`` (full-resolution output only).

Each case is one (network, size, batch, dtype, mode): warm-up calls, then timed calls until the
case's time budget is spent (at least ``min_repeats``), each timed from a synchronised start to a
synchronised end; fps = batch / median call time. Input layout ``(B, in_channels, H, W)`` float32,
channels_last when asked. ``bf16`` is autocast (weights stay fp32). ``compiled`` is
``torch.compile`` (``max-autotune`` on CUDA, which also uses CUDA graphs); compile time is reported
separately and a case whose compile fails is recorded with its error, not hidden.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mcnn.bench.env import environment, synchronize
from mcnn.models import MCNN, ModelConfig, count_parameters

log = logging.getLogger(__name__)

DTYPES = ("fp32", "bf16")
MODES = ("eager", "compiled")


@dataclass(frozen=True)
class SpeedCase:
    network: str
    size: int
    batch: int
    dtype: str
    mode: str


def _autocast(device: torch.device, dtype: str):
    if dtype == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def time_calls(
    fn, device: torch.device, *, seconds: float, warmup: int = 2, min_repeats: int = 3,
    max_repeats: int = 1000,
) -> list[float]:
    """Seconds per call of ``fn()``: ``warmup`` untimed calls, then timed ones until ``seconds``."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_repeats or (
        time.perf_counter() - start < seconds and len(times) < max_repeats
    ):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return times


def measure_case(
    model: nn.Module,
    config: ModelConfig,
    case: SpeedCase,
    device: torch.device,
    *,
    seconds: float,
    warmup: int = 2,
    channels_last: bool = True,
) -> dict[str, Any]:
    """One case's result: fps, median/min ms per call, repeats, compile time; or an error."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(case.batch, config.in_channels, case.size, case.size, device=device)
    x = x.contiguous(memory_format=fmt)
    result: dict[str, Any] = {**case.__dict__}
    fn_model: Any = model
    compile_s = None
    try:
        if case.mode == "compiled":
            torch._dynamo.reset()
            kw = {"mode": "max-autotune"} if device.type == "cuda" else {}
            fn_model = torch.compile(model, dynamic=False, **kw)

        def call() -> torch.Tensor:
            with torch.inference_mode(), _autocast(device, case.dtype):
                return fn_model(x)

        if case.mode == "compiled":  # the first call compiles; time it on its own
            t0 = time.perf_counter()
            call()
            synchronize(device)
            compile_s = time.perf_counter() - t0
        times = time_calls(call, device, seconds=seconds, warmup=warmup)
    except Exception as exc:  # compile/backends fail in many ways; record and go on
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("%s: skipped (%s: %s)", case, type(exc).__name__, msg[:200])
        result.update(fps=None, error=f"{type(exc).__name__}: {msg[:300]}")
        return result
    med = statistics.median(times)
    result.update(
        fps=round(case.batch / med, 3),
        ms_per_call_median=round(med * 1e3, 4),
        ms_per_call_min=round(min(times) * 1e3, 4),
        repeats=len(times),
        compile_s=None if compile_s is None else round(compile_s, 2),
    )
    return result


def run_speed_bench(
    networks: dict[str, ModelConfig],
    device: torch.device,
    *,
    sizes: Sequence[int] = (128, 512),
    batch_sizes: Sequence[int] = (1, 8),
    dtypes: Sequence[str] = DTYPES,
    modes: Sequence[str] = MODES,
    seconds: float = 2.0,
    warmup: int = 2,
    channels_last: bool = True,
    progress=None,
) -> dict[str, Any]:
    """Every combination of the arguments for every network; returns the JSON-ready result."""
    for d in dtypes:
        if d not in DTYPES:
            raise ValueError(f"unknown dtype {d!r}; choose from {list(DTYPES)}")
    for m in modes:
        if m not in MODES:
            raise ValueError(f"unknown mode {m!r}; choose from {list(MODES)}")
    result: dict[str, Any] = {
        "benchmark": "speed",
        **environment(device),
        "settings": {
            "sizes": list(sizes), "batch_sizes": list(batch_sizes), "dtypes": list(dtypes),
            "modes": list(modes), "seconds_per_case": seconds, "warmup": warmup,
            "channels_last": channels_last, "what": "MCNN.forward (full-resolution output), "
            "torch.inference_mode; fps = batch / median seconds per call",
        },
        "networks": {},
        "cases": [],
    }
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for name, cfg in networks.items():
        torch.manual_seed(0)
        model = MCNN(cfg).to(device, memory_format=fmt).eval()
        result["networks"][name] = {
            "parameters": count_parameters(model), "config": cfg.model_dump(mode="json")
        }
        for mode in modes:
            for dtype in dtypes:
                for size in sizes:
                    for batch in batch_sizes:
                        case = SpeedCase(name, size, batch, dtype, mode)
                        r = measure_case(model, cfg, case, device, seconds=seconds,
                                         warmup=warmup, channels_last=channels_last)
                        result["cases"].append(r)
                        if progress is not None:
                            progress(r)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return result

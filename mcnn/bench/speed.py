"""Inference speed: frames per second of ``MCNN.forward`` (full-resolution output only).

Each case is one (network, size, batch, dtype, mode): ``warmup`` untimed calls, then ``repeats``
timed calls (or as many as fit in the case's time budget, at least ``min_repeats``), each timed
from a synchronised start to a synchronised end (``mcnn.bench.timing``: CUDA events on a GPU).
A case reports the median, p10/p90 and min/max ms per call and fps = batch / seconds per call
(median and p10/p90). Input layout ``(B, in_channels, H, W)`` float32, channels_last when asked.
``bf16`` is autocast (weights stay fp32). ``compiled`` is ``torch.compile`` (``max-autotune`` on
CUDA, which also uses CUDA graphs); compile time is reported separately and a case whose compile
fails is recorded with its error, not hidden.

Comparisons are ratios within one run: each case carries ``speedup_vs_fp32_eager``, the fp32 eager
median time of the same network, size and batch divided by the case's median (1.8 = 1.8x faster).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mcnn.bench.env import environment, synchronize
from mcnn.bench.timing import time_calls, time_stats
from mcnn.models import MCNN, ModelConfig, count_parameters

log = logging.getLogger(__name__)

DTYPES = ("fp32", "bf16")
MODES = ("eager", "compiled")
BASELINE_DTYPE, BASELINE_MODE = "fp32", "eager"

__all__ = ["DTYPES", "MODES", "SpeedCase", "measure_case", "run_speed_bench", "time_calls"]


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


def measure_case(
    model: nn.Module,
    config: ModelConfig,
    case: SpeedCase,
    device: torch.device,
    *,
    seconds: float,
    warmup: int = 2,
    repeats: int | None = None,
    min_repeats: int = 5,
    channels_last: bool = True,
) -> dict[str, Any]:
    """One case's result: fps and ms per call (median, p10, p90, min, max), repeats, compile
    time; or an error."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(case.batch, config.in_channels, case.size, case.size, device=device)
    x = x.contiguous(memory_format=fmt)
    result: dict[str, Any] = {**case.__dict__}
    fn_model: Any = model
    compile_s = None
    try:
        if case.mode == "compiled":
            torch._dynamo.reset()
            kw: dict[str, Any] = {"mode": "max-autotune"} if device.type == "cuda" else {}
            fn_model = torch.compile(model, dynamic=False, **kw)

        def call() -> torch.Tensor:
            with torch.inference_mode(), _autocast(device, case.dtype):
                return fn_model(x)

        if case.mode == "compiled":  # the first call compiles; time it on its own
            synchronize(device)
            t0 = time.perf_counter()
            call()
            synchronize(device)
            compile_s = time.perf_counter() - t0
        times = time_calls(call, device, seconds=seconds, warmup=warmup, repeats=repeats,
                           min_repeats=min_repeats)
    except Exception as exc:  # compile/backends fail in many ways; record and go on
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("%s: skipped (%s: %s)", case, type(exc).__name__, msg[:200])
        result.update(fps=None, error=f"{type(exc).__name__}: {msg[:300]}")
        return result
    st = time_stats(times, per_call_items=case.batch)
    result.update(
        fps=st["per_s_median"], fps_p10=st["per_s_p10"], fps_p90=st["per_s_p90"],
        ms_per_call_median=st["ms_median"], ms_per_call_p10=st["ms_p10"],
        ms_per_call_p90=st["ms_p90"], ms_per_call_min=st["ms_min"],
        ms_per_call_max=st["ms_max"], repeats=st["repeats"], warmup=warmup,
        compile_s=None if compile_s is None else round(compile_s, 2),
    )
    return result


def add_speedups(cases: list[dict[str, Any]]) -> None:
    """``speedup_vs_fp32_eager`` on every measured case whose fp32 eager twin (same network, size,
    batch) was measured in the same run; None otherwise."""
    base = {(c["network"], c["size"], c["batch"]): c.get("ms_per_call_median")
            for c in cases if c["dtype"] == BASELINE_DTYPE and c["mode"] == BASELINE_MODE}
    for c in cases:
        ref = base.get((c["network"], c["size"], c["batch"]))
        mine = c.get("ms_per_call_median")
        c["speedup_vs_fp32_eager"] = round(ref / mine, 4) if ref and mine else None


def run_speed_bench(
    networks: dict[str, ModelConfig],
    device: torch.device,
    *,
    sizes: Sequence[int] = (128, 512),
    batch_sizes: Sequence[int] = (1, 8),
    dtypes: Sequence[str] = DTYPES,
    modes: Sequence[str] = MODES,
    seconds: float = 2.0,
    warmup: int = 3,
    repeats: int | None = None,
    min_repeats: int = 5,
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
    if repeats is not None and repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    result: dict[str, Any] = {
        "benchmark": "speed",
        **environment(device),
        "settings": {
            "sizes": list(sizes), "batch_sizes": list(batch_sizes), "dtypes": list(dtypes),
            "modes": list(modes), "seconds_per_case": None if repeats else seconds,
            "repeats": repeats, "min_repeats": min_repeats, "warmup": warmup,
            "channels_last": channels_last,
            "what": "MCNN.forward (full-resolution output), torch.inference_mode; each call timed "
            "from a synchronised start to a synchronised end (CUDA events on a GPU) after warm-up;"
            " fps = batch / seconds per call (median, p10, p90); speedup_vs_fp32_eager = median "
            "time of the same network/size/batch in fp32 eager / this case's median, same run",
        },
        "networks": {},
        "cases": [],
    }
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for name, cfg in networks.items():
        torch.manual_seed(0)
        model = MCNN(cfg).to(device, memory_format=fmt).eval()  # type: ignore[call-overload]
        result["networks"][name] = {
            "parameters": count_parameters(model), "config": cfg.model_dump(mode="json")
        }
        # the baseline (fp32 eager) first, so every ratio has its reference measured already
        order = sorted(modes, key=lambda m: m != BASELINE_MODE)
        for mode in order:
            for dtype in sorted(dtypes, key=lambda d: d != BASELINE_DTYPE):
                for size in sizes:
                    for batch in batch_sizes:
                        case = SpeedCase(name, size, batch, dtype, mode)
                        r = measure_case(model, cfg, case, device, seconds=seconds,
                                         warmup=warmup, repeats=repeats, min_repeats=min_repeats,
                                         channels_last=channels_last)
                        result["cases"].append(r)
                        if progress is not None:
                            progress(r)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    add_speedups(result["cases"])
    return result

"""Timing calls on CPU and CUDA, and summarising the times, for every benchmark.

Each timed call starts and ends on a synchronised device: on CUDA a pair of ``torch.cuda.Event``
records around the call and ``Event.synchronize`` (the GPU's own clock, no host jitter), elsewhere
``time.perf_counter`` after the call returns. Warm-up calls come first and are not timed (lazy
initialisation, autotuning, CUDA-graph capture, allocator growth).

Comparisons (bf16 vs fp32, MCNN vs U-Net) are measured *interleaved* (``time_interleaved``): the
callables take turns in short blocks, so a slow drift of the machine (clock boost, another process)
falls on all of them alike instead of on whichever ran last.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from mcnn.bench.env import synchronize
from mcnn.bench.summary import quantile


class _Timer:
    """Seconds taken by one call of ``fn`` on ``device``, the device synchronised before and after."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.device = device
        if self.cuda:
            self.start = torch.cuda.Event(enable_timing=True)
            self.end = torch.cuda.Event(enable_timing=True)

    def __call__(self, fn: Callable[[], Any]) -> float:
        if self.cuda:
            self.start.record()
            fn()
            self.end.record()
            self.end.synchronize()
            return self.start.elapsed_time(self.end) / 1e3
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0


def time_calls(
    fn: Callable[[], Any], device: torch.device, *, seconds: float = 1.0, warmup: int = 2,
    min_repeats: int = 3, max_repeats: int = 1000, repeats: int | None = None,
) -> list[float]:
    """Seconds per call of ``fn()``: ``warmup`` untimed calls, then exactly ``repeats`` timed calls
    when given, else timed calls until ``seconds`` have passed (at least ``min_repeats``, at most
    ``max_repeats``)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    timer = _Timer(device)
    times: list[float] = []
    start = time.perf_counter()
    while True:
        if repeats is not None:
            if len(times) >= repeats:
                break
        elif len(times) >= min_repeats and (
            time.perf_counter() - start >= seconds or len(times) >= max_repeats
        ):
            break
        times.append(timer(fn))
    return times


def time_interleaved(
    fns: dict[str, Callable[[], Any]], device: torch.device, *, seconds: float = 1.0,
    warmup: int = 2, rounds: int = 5, min_repeats: int = 5, repeats: int | None = None,
) -> dict[str, list[float]]:
    """Times of each callable, measured in ``rounds`` turns (each callable a block of calls per
    turn), after ``warmup`` untimed calls each. ``repeats`` fixes the calls per callable; otherwise
    the budget is ``seconds`` per callable, at least ``min_repeats`` calls each."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    synchronize(device)
    timer = _Timer(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    if repeats is not None:
        per_block = [repeats // rounds + (1 if r < repeats % rounds else 0) for r in range(rounds)]
        for n in per_block:
            for name, fn in fns.items():
                times[name] += [timer(fn) for _ in range(n)]
        return times
    block_s = seconds / rounds
    for r in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            need = -(-min_repeats * (r + 1) // rounds) - len(times[name])  # spread the minimum
            while need > 0 or time.perf_counter() - start < block_s:
                times[name].append(timer(fn))
                need -= 1
    return times


def time_stats(times: Sequence[float], per_call_items: int = 1) -> dict[str, Any]:
    """Milliseconds per call (median, p10, p90, min, max), the number of timed calls, and items/s
    (``per_call_items / seconds``: median, and p10/p90 taken from the p90/p10 times)."""
    xs = sorted(float(t) for t in times)
    if not xs:
        raise ValueError("no timed calls")
    med, p10, p90 = quantile(xs, 0.5), quantile(xs, 0.1), quantile(xs, 0.9)

    def ms(x: float) -> float:
        return round(x * 1e3, 4)

    def rate(x: float) -> float:
        return round(per_call_items / x, 3) if x > 0 else float("inf")

    return {
        "ms_median": ms(med), "ms_p10": ms(p10), "ms_p90": ms(p90), "ms_min": ms(xs[0]),
        "ms_max": ms(xs[-1]), "repeats": len(xs),
        "per_s_median": rate(med), "per_s_p10": rate(p90), "per_s_p90": rate(p10),
    }

"""Pure functions that turn validation curves into the convergence benchmark's summary.

A curve is the validation MAE of one run at increasing steps, ``steps[i] -> values[i]``, with the
pure training time (s, validation excluded) spent up to each of those steps in ``seconds[i]``. A run
that diverged has NaN values; NaN never counts as reaching a level.

Why smoothing: one validation MAE is noisy (a lucky batch order can dip below a level once and
climb back), so "iterations to reach" is read off the curve smoothed by a centred moving median
over ``k`` validations (``smooth_median``): a run reaches a level at the first validation where the
median of the ``k`` validations centred on it is at or below the level, i.e. where most of its
neighbourhood is. ``k = 1`` is the raw curve.

Why medians and quantiles: seeds differ by more than variants often do, so every figure is a
distribution over seeds: median, min-max and the inter-quartile range (``spread``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any


def smooth_median(values: Sequence[float], k: int) -> list[float]:
    """Centred moving median over ``k`` (odd) points; the window is truncated at both ends.

    NaN (a diverged validation) counts as +inf inside a window, so it can only delay a reach.
    """
    if k < 1 or k % 2 == 0:
        raise ValueError(f"smoothing window must be an odd number >= 1, got {k}")
    h = k // 2
    clean = [math.inf if math.isnan(v) else float(v) for v in values]
    out = []
    for i in range(len(clean)):
        window = sorted(clean[max(i - h, 0): i + h + 1])
        out.append(quantile(window, 0.5))
    return out


def first_reach(
    steps: Sequence[int], values: Sequence[float], level: float
) -> tuple[int, int] | None:
    """``(index, step)`` of the first validation whose MAE is <= ``level``; None if never."""
    for i, (s, v) in enumerate(zip(steps, values, strict=True)):
        if not math.isnan(v) and v <= level:
            return i, int(s)
    return None


def steps_to_reach(
    steps: Sequence[int], values: Sequence[float], level: float, smooth: int = 1
) -> int | None:
    """Iterations until the (smoothed, see module doc) validation MAE first reaches ``level``, at
    validation resolution."""
    hit = first_reach(steps, smooth_median(values, smooth), level)
    return None if hit is None else hit[1]


def seconds_to_reach(
    steps: Sequence[int], values: Sequence[float], seconds: Sequence[float], level: float,
    smooth: int = 1,
) -> float | None:
    """Training seconds (validation excluded) until the (smoothed) MAE first reaches ``level``."""
    hit = first_reach(steps, smooth_median(values, smooth), level)
    return None if hit is None else float(seconds[hit[0]])


def value_at(steps: Sequence[int], values: Sequence[float], step: int) -> float | None:
    """MAE of the last validation at or before ``step``; None when none was that early."""
    best = None
    for s, v in zip(steps, values, strict=True):
        if s <= step:
            best = float(v)
    return best


def late_mean(steps: Sequence[int], values: Sequence[float], fraction: float = 0.25) -> float:
    """Mean MAE over the validations in the last ``fraction`` of the run's steps: less noisy than
    the single last validation (NaN when any of them diverged)."""
    cut = steps[-1] * (1 - fraction)
    tail = [v for s, v in zip(steps, values, strict=True) if s >= cut] or [values[-1]]
    return float(sum(tail) / len(tail))


def quantile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of sorted values (numpy's default); +inf entries allowed."""
    if not sorted_xs:
        return math.inf
    pos = q * (len(sorted_xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    frac = pos - lo
    a, b = sorted_xs[lo], sorted_xs[hi]
    if frac == 0 or a == b:
        return float(a)
    if math.isinf(b):
        return math.inf
    return float(a + frac * (b - a))


def _finite_or_none(x: float) -> float | None:
    return None if math.isinf(x) else round(x, 6)


def spread(xs: Iterable[float | None]) -> dict[str, Any]:
    """Median, quartiles (q25, q75: the IQR), min and max over runs.

    ``None`` (never reached) and NaN (diverged) rank as +inf, so a quantile that falls on such a run
    is None: the median is None when half or more of the runs never got there. min/max are over the
    finite runs; ``n_finite`` says how many there were.
    """
    xs = list(xs)
    n = len(xs)
    finite = sorted(float(x) for x in xs if x is not None and not math.isnan(x))
    ranked = finite + [math.inf] * (n - len(finite))
    return {
        "median": _finite_or_none(quantile(ranked, 0.5)),
        "q25": _finite_or_none(quantile(ranked, 0.25)),
        "q75": _finite_or_none(quantile(ranked, 0.75)),
        "min": round(finite[0], 6) if finite else None,
        "max": round(finite[-1], 6) if finite else None,
        "n": n,
        "n_finite": len(finite),
    }


def group_curves(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, list]]:
    """``{(variant, skip, seed): {"step": [...], "val_mae": [...], "train_time_s": [...]}}``."""
    curves: dict[tuple[str, str, int], dict[str, list]] = {}
    for r in rows:
        key = (r["variant"], r["skip"], int(r["seed"]))
        c = curves.setdefault(key, {"step": [], "val_mae": [], "train_time_s": []})
        c["step"].append(int(r["step"]))
        c["val_mae"].append(float(r["val_mae"]))
        c["train_time_s"].append(float(r["train_time_s"]))
    for c in curves.values():
        order = sorted(range(len(c["step"])), key=c["step"].__getitem__)
        for k in c:
            c[k] = [c[k][i] for i in order]
    return curves


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else round(a / b, 4)


def summarize_curves(
    rows: Iterable[dict[str, Any]],
    *,
    checkpoints: Sequence[int] = (100, 500, 2000),
    levels: Sequence[float] = (0.1, 0.07),
    baseline: str = "unet",
    smooth: int = 5,
) -> dict[str, dict[str, Any]]:
    """Per skip, per variant, as ``spread`` over seeds: raw validation MAE at each checkpoint
    reached, final MAE, late MAE (mean of the last quarter of validations), training seconds, and
    for each level in ``levels`` and the baseline's median final MAE (``"<baseline>_final"``) the
    iterations and training seconds to reach it on the curve smoothed over ``smooth`` validations.
    ``vs_baseline`` gives the ratio of this variant's median to the baseline's (< 1: it gets there
    in fewer iterations / seconds).

    A checkpoint beyond the last validation step is left out; the last step is always reported.
    """
    curves = group_curves(rows)
    out: dict[str, dict[str, Any]] = {}
    skips = sorted({k[1] for k in curves})
    for skip in skips:
        variants = sorted({k[0] for k in curves if k[1] == skip}, key=lambda v: (v != baseline, v))
        base_runs = [c for (v, s, _), c in curves.items() if v == baseline and s == skip]
        base_final = spread(c["val_mae"][-1] for c in base_runs)["median"] if base_runs else None
        targets: dict[str, float] = {f"{lv:g}": float(lv) for lv in levels}
        if base_final is not None:
            targets[f"{baseline}_final"] = base_final
        out[skip] = {}
        for variant in variants:
            runs = [c for (v, s, _), c in sorted(curves.items()) if v == variant and s == skip]
            last = min(c["step"][-1] for c in runs)
            marks = sorted({*(p for p in checkpoints if p <= last), last})
            entry: dict[str, Any] = {
                "seeds": len(runs),
                "mae_at_step": {
                    str(p): spread(value_at(c["step"], c["val_mae"], p) for c in runs) for p in marks
                },
                "final_mae": spread(c["val_mae"][-1] for c in runs),
                "late_mae": spread(late_mean(c["step"], c["val_mae"]) for c in runs),
                "train_time_s": spread(c["train_time_s"][-1] for c in runs),
                "reach": {},
            }
            for name, level in targets.items():
                entry["reach"][name] = {
                    "mae": level,
                    "steps": spread(steps_to_reach(c["step"], c["val_mae"], level, smooth)
                                    for c in runs),
                    "seconds": spread(
                        seconds_to_reach(c["step"], c["val_mae"], c["train_time_s"], level, smooth)
                        for c in runs
                    ),
                }
            out[skip][variant] = entry
        base = out[skip].get(baseline)
        if base is None:
            continue
        for variant, entry in out[skip].items():
            if variant == baseline:
                continue
            entry["vs_baseline"] = {
                "late_mae": _ratio(entry["late_mae"]["median"], base["late_mae"]["median"]),
                "final_mae": _ratio(entry["final_mae"]["median"], base["final_mae"]["median"]),
                "reach": {
                    name: {
                        "steps": _ratio(r["steps"]["median"], base["reach"][name]["steps"]["median"]),
                        "seconds": _ratio(r["seconds"]["median"],
                                          base["reach"][name]["seconds"]["median"]),
                    }
                    for name, r in entry["reach"].items()
                },
            }
    return out

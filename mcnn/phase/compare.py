"""Run the network and the classical baselines on the same series: phase maps, timings, metrics.

The network is any object with ``predict((N, H, W)) -> (H, W) | (C, H, W)``, ``training_data`` and
``config.out_channels`` (``mcnn.infer.Predictor``); it gets the planes it was trained for, checked
by ``mcnn.phase.check``. Baselines get every plane of the series (FFT-TIE picks its pair).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from mcnn.phase.baselines import BASELINES
from mcnn.phase.check import match_series_to_model
from mcnn.phase.metrics import phase_rmse, phase_ssim
from mcnn.phase.series import PhaseSeries


@dataclass
class MethodResult:
    """A retrieved phase ``(H, W)`` rad (mean 0; amplitude when the method gives one)."""

    name: str
    phase: np.ndarray
    seconds: float
    defocus_um: tuple[float, ...]
    amplitude: np.ndarray | None = None
    mismatches: tuple[str, ...] = ()


def run_baseline(name: str, series: PhaseSeries, **options: Any) -> MethodResult:
    if name not in BASELINES:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(BASELINES)}")
    start = time.perf_counter()
    phase = BASELINES[name](series.intensities, series.defocus_um, series.wavelength_um,
                            series.pixel_size_um, medium_index=series.medium_index, **options)
    seconds = time.perf_counter() - start
    used = series.defocus_um
    if name == "fft_tie":  # it uses one pair (and the in-focus plane when there is one)
        from mcnn.phase.tie import symmetric_pair

        pair = symmetric_pair(used)
        used = tuple(sorted({used[pair[0]], used[pair[1]]} | ({0.0} & set(used))))
    return MethodResult(name, np.asarray(phase, np.float32), seconds, used)


def run_network(
    predictor: Any,
    series: PhaseSeries,
    name: str = "mcnn",
    *,
    tolerance: float = 0.01,
    allow_mismatch: bool = False,
    resample: bool = False,
    warmup: bool = False,
) -> MethodResult:
    """The model on the planes it was trained for; output on the series' own pixel grid.
    ``warmup``: run it once untimed first, so ``seconds`` leaves out first-call allocation."""
    ready, problems = match_series_to_model(series, predictor.training_data, tolerance=tolerance,
                                            allow_mismatch=allow_mismatch, resample=resample)
    if warmup:
        predictor.predict(ready.intensities)
    start = time.perf_counter()
    y = np.asarray(predictor.predict(ready.intensities), dtype=np.float32)
    seconds = time.perf_counter() - start
    y = y[None] if y.ndim == 2 else y
    if y.shape[-2:] != series.shape:  # resampled: back to the series grid
        import torch

        from mcnn.physics.functional import resize

        y = resize(torch.from_numpy(y)[None], series.shape)[0].numpy()
    phase = y[0] - y[0].mean()
    amplitude = y[1] if y.shape[0] > 1 else None
    return MethodResult(name, phase.astype(np.float32), seconds, ready.defocus_um, amplitude,
                        tuple(problems))


def metrics(results: list[MethodResult], truth: np.ndarray | None) -> list[dict[str, Any]]:
    """One row per method: planes, seconds, and with a truth phase RMSE (piston removed) / SSIM;
    the zero-phase guess is the first row when the truth is known (the scale of the errors)."""
    rows: list[dict[str, Any]] = []
    if truth is not None:
        zero = np.zeros_like(truth)
        rows.append({"method": "zero phase", "planes": 0, "seconds": 0.0,
                     "phase_rmse_rad": phase_rmse(zero, truth), "phase_ssim": phase_ssim(zero, truth)})
    for r in results:
        row: dict[str, Any] = {"method": r.name, "planes": len(r.defocus_um),
                               "defocus_um": list(r.defocus_um), "seconds": round(r.seconds, 4)}
        if truth is not None:
            row["phase_rmse_rad"] = phase_rmse(r.phase, truth)
            row["phase_ssim"] = phase_ssim(r.phase, truth)
        if r.mismatches:
            row["mismatches"] = list(r.mismatches)
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of ``metrics`` rows."""
    has_truth = any("phase_rmse_rad" in r for r in rows)
    head = "| method | planes | time (ms) |" + (" phase RMSE (rad) | SSIM |" if has_truth else "")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        line = f"| {r['method']} | {r['planes']} | {1000 * r['seconds']:.1f} |"
        if has_truth:
            line += f" {r.get('phase_rmse_rad', float('nan')):.4f} | {r.get('phase_ssim', float('nan')):.3f} |"
        lines.append(line)
    return "\n".join(lines)

"""Figures of retrieved phase: a colour bar in rad, a scale bar in um, one colour scale per row.

matplotlib is imported inside the functions (Agg backend), so importing this module is free.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np


def nice_length_um(width_um: float) -> float:
    """A round scale-bar length (1, 2 or 5 x 10^k um) near a fifth of ``width_um``."""
    target = max(width_um / 5, 1e-9)
    power = 10 ** math.floor(math.log10(target))
    return max(m * power for m in (1, 2, 5) if m * power <= target * 1.0001) if target >= power \
        else power


def _scale_bar(ax: Any, shape: tuple[int, int], pixel_size_um: float) -> None:
    from matplotlib.patches import Rectangle

    h, w = shape
    length = nice_length_um(w * pixel_size_um)
    px = length / pixel_size_um
    x0, y0 = w - px - 0.05 * w, h - 0.07 * h
    ax.add_patch(Rectangle((x0, y0), px, max(1.0, 0.02 * h), color="white", ec="black", lw=0.5))
    label = f"{length:g} µm" if length >= 1 else f"{1000 * length:g} nm"
    ax.text(x0 + px / 2, y0 - 0.02 * h, label, color="white", ha="center", va="bottom",
            fontsize=8, fontweight="bold")


def _image(ax: Any, image: np.ndarray, pixel_size_um: float, title: str, vmin: float,
           vmax: float, cmap: str, label: str) -> None:
    im = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    _scale_bar(ax, image.shape, pixel_size_um)
    bar = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)


def save_phase_png(phase: np.ndarray, pixel_size_um: float, path: str | Path,
                   title: str = "phase") -> Path:
    """One phase map ``(H, W)`` rad as a PNG with a colour bar (rad) and a scale bar (um)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    h, w = phase.shape
    fig, ax = plt.subplots(figsize=(4.5 * max(w / h, 0.6), 4.0), dpi=120)
    lo, hi = np.percentile(phase, [0.5, 99.5])
    _image(ax, phase, pixel_size_um, title, float(lo), float(hi), "viridis", "phase (rad)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def save_comparison(
    panels: dict[str, np.ndarray],
    pixel_size_um: float,
    path: str | Path,
    truth: np.ndarray | None = None,
    subtitles: dict[str, str] | None = None,
) -> Path:
    """One panel per method, all on one colour scale (the truth's when known); with a truth, a
    second row of error maps (piston removed) on one symmetric scale."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    maps = {k: v - v.mean() for k, v in panels.items()}
    if truth is not None:
        maps = {"ground truth": truth - truth.mean(), **maps}
    reference = maps["ground truth"] if truth is not None else np.concatenate(
        [m.ravel() for m in maps.values()])
    lo, hi = (float(v) for v in np.percentile(reference, [0.5, 99.5]))
    n = len(maps)
    rows = 2 if truth is not None else 1
    h, w = next(iter(maps.values())).shape
    fig, axes = plt.subplots(rows, n, figsize=(3.2 * n * max(w / h, 0.6), 3.0 * rows), dpi=110,
                             squeeze=False)
    subtitles = subtitles or {}
    for j, (name, m) in enumerate(maps.items()):
        title = name + (f"\n{subtitles[name]}" if name in subtitles else "")
        _image(axes[0, j], m, pixel_size_um, title, lo, hi, "viridis", "phase (rad)")
    if truth is not None:
        t = maps["ground truth"]
        errors = {k: v - t for k, v in maps.items() if k != "ground truth"}
        span = max(float(np.percentile(np.abs(np.concatenate([e.ravel() for e in errors.values()])),
                                       99.5)), 1e-6)
        axes[1, 0].set_axis_off()
        for j, (name, e) in enumerate(errors.items(), start=1):
            rmse = float(np.sqrt(np.mean(e**2)))
            _image(axes[1, j], e, pixel_size_um, f"error {name}\nRMSE {rmse:.3f} rad", -span,
                   span, "RdBu_r", "error (rad)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path

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
    """A white bar with a black outline and label, legible on any colour map."""
    from matplotlib import patheffects
    from matplotlib.patches import Rectangle

    h, w = shape
    length = nice_length_um(w * pixel_size_um)
    px = length / pixel_size_um
    x0, y0 = w - px - 0.05 * w, h - 0.07 * h
    ax.add_patch(Rectangle((x0, y0), px, max(1.0, 0.02 * h), color="white", ec="black", lw=0.5))
    label = f"{length:g} µm" if length >= 1 else f"{1000 * length:g} nm"
    ax.text(x0 + px / 2, y0 - 0.02 * h, label, color="white", ha="center", va="bottom",
            fontsize=8, fontweight="bold",
            path_effects=[patheffects.withStroke(linewidth=2, foreground="black")])


def _image(ax: Any, image: np.ndarray, pixel_size_um: float, title: str, vmin: float,
           vmax: float, cmap: str, label: str | None) -> Any:
    """Draw one map; ``label``: its own colour bar, None: the caller draws a shared one."""
    im = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    _scale_bar(ax, image.shape, pixel_size_um)
    if label is not None:
        bar = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
        bar.set_label(label, fontsize=8)
        bar.ax.tick_params(labelsize=7)
    return im


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


DISPLAY_NAMES = {"fft_tie": "FFT-TIE", "multiplane_tie": "multi-plane TIE",
                 "gs": "Gerchberg-Saxton"}


def save_comparison(
    panels: dict[str, np.ndarray],
    pixel_size_um: float,
    path: str | Path,
    truth: np.ndarray | None = None,
    subtitles: dict[str, str] | None = None,
    intensity: tuple[str, np.ndarray] | None = None,
    dpi: int = 100,
) -> Path:
    """One panel per method on one colour scale (the truth's when known) with one colour bar in
    rad per row; with a truth, a second row of error maps (piston removed) on one symmetric scale,
    led by ``intensity`` (a label and one recorded plane) when given. Method keys are shown by
    their ``DISPLAY_NAMES``."""
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
    fig, axes = plt.subplots(rows, n, figsize=(2.6 * n * max(w / h, 0.6) + 0.9, 2.8 * rows),
                             dpi=dpi, squeeze=False, layout="constrained")
    subtitles = subtitles or {}
    for j, (name, m) in enumerate(maps.items()):
        title = DISPLAY_NAMES.get(name, name) + (f"\n{subtitles[name]}" if name in subtitles
                                                 else "")
        im = _image(axes[0, j], m, pixel_size_um, title, lo, hi, "viridis", None)
    _shared_bar(fig, im, axes[0, :], "phase (rad)")
    if truth is not None:
        t = maps["ground truth"]
        errors = {k: v - t for k, v in maps.items() if k != "ground truth"}
        span = max(float(np.percentile(np.abs(np.concatenate([e.ravel() for e in errors.values()])),
                                       99.5)), 1e-6)
        if intensity is not None:
            label, plane = intensity
            i_lo, i_hi = (float(v) for v in np.percentile(plane, [0.5, 99.5]))
            _image(axes[1, 0], plane, pixel_size_um, label, i_lo, i_hi, "gray", "I / I₀")
        else:
            axes[1, 0].set_axis_off()
        for j, (name, e) in enumerate(errors.items(), start=1):
            rmse = float(np.sqrt(np.mean(e**2)))
            im = _image(axes[1, j], e, pixel_size_um,
                        f"error, {DISPLAY_NAMES.get(name, name)}\nRMSE {rmse:.3f} rad", -span,
                        span, "RdBu_r", None)
        _shared_bar(fig, im, axes[1, 1:], "error (rad)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_palette_png(fig, path)
    plt.close(fig)
    return path


def _save_palette_png(fig: Any, path: Path) -> None:
    """Save as a 256-colour PNG: noisy maps (error maps, raw planes) compress poorly in RGB, and a
    figure of three colour maps loses nothing visible in a palette (about 3x smaller files)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    buffer.seek(0)
    with Image.open(buffer) as image:
        palette = image.convert("RGB").quantize(256, method=Image.Quantize.MAXCOVERAGE,
                                                dither=Image.Dither.NONE)
        palette.save(path, optimize=True)


def _shared_bar(fig: Any, im: Any, axes: Any, label: str) -> None:
    bar = fig.colorbar(im, ax=list(axes), fraction=0.02, pad=0.01, aspect=25)
    bar.set_label(label, fontsize=9)
    bar.ax.tick_params(labelsize=8)

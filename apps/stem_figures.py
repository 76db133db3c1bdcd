"""Figures of the STEM commands: ``stem-denoise --compare`` (raw | denoised | BM3D | difference)
and the scale bar in physical units that every STEM figure carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def compare_figure(path: Path, raw: np.ndarray, denoised: np.ndarray, pixel_size: Any,
                   title: str) -> list[str]:
    """raw | denoised | BM3D (when the ``bm3d`` package is importable) | raw - denoised, with a
    scale bar in physical units; model units, shared grey levels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("raw", raw), ("MCNN", denoised)]
    try:
        import bm3d

        sigma = float(np.std(raw - denoised))  # the noise the model removed
        panels.append(("BM3D", np.asarray(bm3d.bm3d(raw, sigma_psd=sigma), np.float32)))
    except ImportError:
        pass
    panels.append(("raw - MCNN", raw - denoised))
    lo, hi = np.percentile(denoised, [0.5, 99.5])
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4))
    for ax, (name, img) in zip(axes, panels, strict=True):
        if name.startswith("raw -"):
            d = float(np.percentile(np.abs(img), 99.5)) or 1.0
            ax.imshow(img, cmap="RdBu_r", vmin=-d, vmax=d)
        else:
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
        ax.set_title(name)
        ax.axis("off")
        scale_bar(ax, img.shape, pixel_size)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [name for name, _ in panels]


def scale_bar(ax: Any, shape: tuple[int, ...], pixel_size: Any) -> None:
    """A bar of a round length (1, 2 or 5 x 10^k) about a fifth of the width, labelled."""
    from matplotlib import patheffects

    h, w = shape[:2]
    if pixel_size is None:
        length_px, label = max(w // 5, 1), f"{max(w // 5, 1)} px"
    else:
        target = w * pixel_size.x / 5
        k = 10 ** np.floor(np.log10(target))
        nice = max(m * k for m in (1, 2, 5) if m * k <= target)
        length_px = nice / pixel_size.x
        label = length_label(nice, pixel_size.unit)
    x0, y0 = w * 0.05, h * 0.92
    # butt ends: the bar is exactly its length (round ends add half the line width each side);
    # a dark outline keeps it visible on light panels
    outline = [patheffects.withStroke(linewidth=5, foreground="black", capstyle="butt")]
    ax.plot([x0, x0 + length_px], [y0, y0], color="yellow", linewidth=3, solid_capstyle="butt",
            path_effects=outline)
    ax.text(x0, y0 - h * 0.03, label, color="yellow", fontsize=8,
            path_effects=[patheffects.withStroke(linewidth=2, foreground="black")])


def length_label(value: float, unit: str) -> str:
    """``2000 pm`` -> ``2 nm``: the unit that keeps the number between 1 and 1000."""
    from mcnn.data.units import length_in

    try:
        nm = length_in(value, unit, "nm")
    except ValueError:
        return f"{value:g} {unit}"
    for name, size_nm in (("pm", 1e-3), ("nm", 1.0), ("µm", 1e3), ("mm", 1e6)):
        if nm / size_nm < 1000:
            return f"{nm / size_nm:.3g} {name}"
    return f"{nm * 1e-6:.3g} mm"

"""Pictures worth looking at: input | prediction | truth | error panels, and metric curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch


def _show(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) -> displayable (H, W) or (H, W, 3), each image scaled to its own range."""
    a = x.detach().float().cpu().numpy()
    a = a[0] if a.shape[0] not in (3,) else np.moveaxis(a, 0, -1)
    lo, hi = np.percentile(a, [0.5, 99.5])
    return np.clip((a - lo) / max(hi - lo, 1e-8), 0, 1)


def save_comparison(
    path: Path,
    inputs: torch.Tensor,
    preds: torch.Tensor,
    targets: torch.Tensor,
    title: str = "",
    rows: int = 4,
) -> Path:
    """One row per example: input (first channel / RGB), prediction, truth, |error|."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(rows, inputs.shape[0])
    fig, axes = plt.subplots(n, 4, figsize=(12, 3 * n + 0.5), squeeze=False)
    for i in range(n):
        err = (preds[i].float() - targets[i].float()).abs()
        vmax = float(targets[i].amax() - targets[i].amin()) or 1.0
        panels = [
            ("input", _show(inputs[i]), None),
            ("prediction", _show(preds[i]), None),
            ("truth", _show(targets[i]), None),
            (f"|error| (MAE {float(err.mean()):.4f})", err.mean(0).cpu().numpy() / vmax, "magma"),
        ]
        for ax, (name, img, cmap) in zip(axes[i], panels, strict=True):
            ax.imshow(img, cmap=cmap or ("gray" if img.ndim == 2 else None), vmin=0, vmax=1)
            ax.set_title(name, fontsize=9)
            ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def save_curves(
    path: Path, curves: dict[str, tuple[Sequence[float], Sequence[float]]], ylabel: str, title: str
) -> Path:
    """Line plot of named (x, y) curves on a log-y axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, (x, y) in curves.items():
        ax.plot(x, y, label=name, lw=1.4)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)

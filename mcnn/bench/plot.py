"""The convergence figure: median validation MAE per variant, its inter-quartile band (darker) and
min-max band (lighter) over seeds. Raw validation points: the smoothing is for reading off
"iterations to reach", not for the picture."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from mcnn.bench.summary import group_curves
from mcnn.utils.atomic import atomic_write_bytes


def plot_convergence(rows: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """One panel per skip type; x = iterations, y = validation MAE (log scale)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    curves = group_curves(rows)
    skips = sorted({k[1] for k in curves})
    variants = sorted({k[0] for k in curves}, key=lambda v: (v != "unet", v))
    fig, axes = plt.subplots(1, len(skips), figsize=(6 * len(skips), 4.5), squeeze=False,
                             sharey=True)
    for ax, skip in zip(axes[0], skips, strict=True):
        for i, variant in enumerate(variants):
            runs = [c for (v, s, _), c in curves.items() if v == variant and s == skip]
            if not runs:
                continue
            n = min(len(c["step"]) for c in runs)
            steps = np.array(runs[0]["step"][:n])
            vals = np.array([c["val_mae"][:n] for c in runs], dtype=float)
            color = f"C{i}"
            ax.plot(steps, np.nanmedian(vals, axis=0), color=color,
                    label=f"{variant} ({len(runs)} seeds)")
            ax.fill_between(steps, np.nanmin(vals, axis=0), np.nanmax(vals, axis=0),
                            color=color, alpha=0.12, linewidth=0)
            q25, q75 = np.nanpercentile(vals, [25, 75], axis=0)
            ax.fill_between(steps, q25, q75, color=color, alpha=0.3, linewidth=0)
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_title(f"skip = {skip}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    axes[0][0].set_ylabel("validation MAE")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())

"""The figure of ``mcnn-bench stem``: for one SNR, a row per frame with raw | MCNN | Gaussian |
(BM3D) | clean, shared grey levels, the vacuum edge outlined, peaks found in vacuum (false atoms)
marked with red crosses, and a scale bar in physical units (``apps.stem_figures.scale_bar``)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from apps.stem_figures import scale_bar
from mcnn.utils.atomic import atomic_write_bytes

TITLES = {"raw": "raw", "mcnn": "MCNN", "mcnn_resampled": "MCNN (resampled)",
          "gaussian": "Gaussian (oracle)", "bm3d": "BM3D (oracle)",
          "bm3d_vst": "BM3D + Anscombe", "clean": "clean"}


def stem_bench_figure(result: Any, path: Path) -> Path:
    """Write the PNG of ``result`` (a ``StemBenchResult``) to ``path``; returns ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from mcnn.data.image_io import PixelSize

    frames = result.figure
    if not frames:
        raise ValueError("the benchmark kept no frames for the figure")
    summary = result.summary
    snr = next(r for r in summary["snrs"]
               if r["target_snr_db"] == (summary["settings"]["figure_snr_db"]
                                         if summary["settings"]["figure_snr_db"] is not None
                                         else min(summary["settings"]["snrs_db"])))
    names = [n for n in ("raw", "mcnn", "mcnn_resampled", "gaussian", "bm3d", "bm3d_vst", "clean")
             if n in frames[0]]
    ps = None if result.pixel_size_pm is None else PixelSize(result.pixel_size_pm,
                                                             result.pixel_size_pm, "pm")
    fig, axes = plt.subplots(len(frames), len(names), figsize=(2.3 * len(names),
                                                               2.3 * len(frames) + 0.5),
                             squeeze=False)
    for r, panels in enumerate(frames):
        lo, hi = np.percentile(panels["clean"], [0.5, 99.8])
        for c, name in enumerate(names):
            ax = axes[r][c]
            ax.imshow(panels[name], cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            ax.contour(panels["vacuum"].astype(float), levels=[0.5], colors="cyan",
                       linewidths=0.6, linestyles="dashed")
            false = result.false_atoms[r].get(name) if r < len(result.false_atoms) else None
            if false is not None and len(false):
                ax.plot(false[:, 1], false[:, 0], "x", color="red", markersize=4, mew=1)
            ax.set_axis_off()
            if r == 0:
                m = snr["methods"].get(name)
                sub = "" if m is None else f"\n{m['psnr_db']:.1f} dB, SSIM {m['ssim']:.2f}"
                ax.set_title(TITLES[name] + sub, fontsize=8)
            scale_bar(ax, panels[name].shape, ps)
    fig.suptitle(f"input SNR {snr['input_snr_db']:.1f} dB ({snr['dose_e_per_px']:.3g} e/px); "
                 "dashed: vacuum, x: atoms found in vacuum", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    return path


def save_figure_frames(result: Any, folder: Path, *, gain_counts_per_e: float = 8.0,
                       offset_counts: float = 500.0) -> list[Path]:
    """The figure's frames as a detector would write them, so ``stem-denoise`` (and a user's
    other tools) can be tried on frames with known truth: ``raw.tif`` (float32 counts =
    offset + gain x electrons, with the pixel size), ``clean.tif`` (model units, mean 1) and
    ``calibration.json`` (that gain and offset, for ``--calibration``)."""
    from mcnn.data.image_io import PixelSize, write_image
    from mcnn.stem.calibration import NoiseCalibration

    frames = result.figure
    if not frames:
        raise ValueError("the benchmark kept no frames to save")
    summary = result.summary
    target = summary["settings"]["figure_snr_db"]
    if target is None:
        target = min(summary["settings"]["snrs_db"])
    dose = next(r["dose_e_per_px"] for r in summary["snrs"] if r["target_snr_db"] == target)
    ps = None if result.pixel_size_pm is None else PixelSize(result.pixel_size_pm,
                                                             result.pixel_size_pm, "pm")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    raw = np.stack([f["raw"] for f in frames]).astype(np.float64) * dose
    counts = (offset_counts + gain_counts_per_e * raw).astype(np.float32)
    paths = [write_image(folder / "raw.tif", counts[:, None], ps),
             write_image(folder / "clean.tif", np.stack([f["clean"] for f in frames])[:, None]
                         .astype(np.float32), ps)]
    calibration = NoiseCalibration(gain_counts_per_e=gain_counts_per_e,
                                   offset_counts=offset_counts, sources=["mcnn-bench stem"])
    return [*paths, calibration.save(folder / "calibration.json")]

"""Phase-retrieval benchmark: MCNN (1 and 2 images) against FFT-TIE, multi-plane TIE and GS on
held-out simulated series (content from images training never saw), and again with the physics
deliberately mismatched (the series recorded at pixel size or distances +-10% from nominal, every
method told the nominal values).

Small by default so it runs on a CPU in minutes; the settings scale it up. Writes
``phase_bench.json`` (settings, per-method metrics, tables) and ``phase_bench.png`` (one held-out
example, same colour scale, error maps).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)


class PhaseBenchSettings(BaseModel):
    """What the benchmark trains and tests; lengths in um, sizes in px."""

    model_config = ConfigDict(extra="forbid")

    size: int = Field(default=64, ge=16, le=1024, description="Series size (square), px.")
    wavelength_um: float = Field(default=0.532, gt=0)
    pixel_size_um: float = Field(default=1.0, gt=0)
    z_um: float = Field(default=20.0, gt=0, description="MCNN (1): -z; MCNN (2) and FFT-TIE: +-z.")
    planes_um: list[float] = Field(
        default=[-40.0, -20.0, 0.0, 20.0, 40.0], min_length=2,
        description="Planes of the multi-plane TIE and GS.")
    phase_max_rad: float = Field(default=3.0, gt=0)
    photons_per_px: float | None = Field(default=1000.0, gt=0)
    content: dict[str, Any] = Field(
        default_factory=lambda: {"kind": "procedural"},
        description="Content config. Image content: the held-out images are tested; procedural: "
        "test draws come from a generator stream training never uses. (Small crops of the bundled "
        "images are nearly flat, phase std ~0.03 rad at 64 px: too easy a test.)")
    train_steps: int = Field(default=300, ge=1)
    batch_size: int = Field(default=8, ge=1)
    depth: int = Field(default=4, ge=1, le=8)
    base_width: int = Field(default=16, ge=1)
    lr: float = Field(default=2e-3, gt=0)
    branch_schedule: Literal["constant", "decay"] = Field(
        default="constant", description="Side-output weights: constant (equal all run) or decay "
        "(equal at the start, full-resolution output only at the end).")
    tie_front: bool = Field(
        default=True, description="Networks get the TIE phase of their planes as an extra input "
        "channel (model.tie_front); false: intensities only.")
    device: str = Field(default="auto")
    test_examples: int = Field(default=16, ge=1, le=10_000)
    regularization: float = Field(default=0.1, ge=0, description="TIE Tikhonov weight.")
    gs_iterations: int = Field(default=20, ge=0)
    mismatch: float = Field(default=0.1, ge=0, lt=1, description="Relative physics error.")
    seed: int = Field(default=0, ge=0)


def _train(settings: PhaseBenchSettings, name: str, defocus_um: list[float], out: Path) -> Path:
    from mcnn.train.config import TrainConfig
    from mcnn.train.trainer import Trainer

    s = settings
    cfg = TrainConfig.model_validate({
        "name": name, "out_dir": str(out),
        "model": {"in_channels": len(defocus_um), "out_channels": 1, "depth": s.depth,
                  "base_width": s.base_width, "max_width": 8 * s.base_width, "branches": 2,
                  "tie_front": {"regularization": s.regularization} if s.tie_front else None},
        "data": {"kind": "simulated", "size": s.size, "seed": s.seed,
                 "examples_per_epoch": max(64, s.train_steps * s.batch_size // 4),
                 "val_examples": 8, "content": s.content,
                 "simulator": {"name": "defocus", "defocus_um": defocus_um,
                               "wavelength_um": s.wavelength_um, "pixel_size_um": s.pixel_size_um,
                               "phase_max_rad": s.phase_max_rad,
                               "photons_per_px": s.photons_per_px}},
        "loss": {"branch_schedule": {"kind": "linear", "end": [1.0, 0.0]}
                 if s.branch_schedule == "decay" else {"kind": "constant"}},
        "optim": {"lr": s.lr, "schedule": "cosine"},
        "train": {"steps": s.train_steps, "batch_size": s.batch_size,
                  "val_every": max(1, s.train_steps // 2), "val_batch_size": 8,
                  "checkpoint_every": s.train_steps, "tensorboard": False, "sample_images": 0,
                  "device": s.device},
    })
    start = time.perf_counter()
    Trainer(cfg, progress=False).fit()
    logger.info("trained %s in %.0f s", name, time.perf_counter() - start)
    return out / name / "checkpoints" / "best"


def _test_set(settings: PhaseBenchSettings, pixel_factor: float = 1.0, z_factor: float = 1.0
              ) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Held-out ``(intensities (E, P, H, W), truth (E, H, W), nominal planes)``, recorded with the
    pixel size and distances scaled by the factors (the methods are told the nominal ones)."""
    import torch

    from mcnn.physics.build import build_content
    from mcnn.physics.config import DefocusConfig, ProceduralContentConfig
    from mcnn.physics.defocus import DefocusSeriesSimulator

    s = settings
    planes = sorted(set(s.planes_um) | {-s.z_um, s.z_um})
    sim = DefocusSeriesSimulator(DefocusConfig(
        defocus_um=[z * z_factor for z in planes], wavelength_um=s.wavelength_um,
        pixel_size_um=s.pixel_size_um * pixel_factor, phase_max_rad=s.phase_max_rad,
        photons_per_px=s.photons_per_px))
    from pydantic import TypeAdapter

    from mcnn.physics.config import ContentConfig

    content_cfg = TypeAdapter(ContentConfig).validate_python(s.content)
    procedural = isinstance(content_cfg, ProceduralContentConfig)
    content = build_content(content_cfg, split="all" if procedural else "val")
    g = torch.Generator().manual_seed(10_000 + s.seed)  # not a training stream
    x, y = sim.sample(s.test_examples, (s.size, s.size), g, content)
    return x.numpy(), y[:, 0].numpy(), planes


def _evaluate(settings: PhaseBenchSettings, models: dict[str, Any], x: np.ndarray,
              truth: np.ndarray, planes: list[float]) -> dict[str, dict[str, float]]:
    from mcnn.phase.compare import run_baseline, run_network
    from mcnn.phase.metrics import phase_rmse, phase_ssim
    from mcnn.phase.series import PhaseSeries

    s = settings
    pair = [planes.index(-s.z_um), planes.index(s.z_um)]
    multi = [planes.index(z) for z in s.planes_um]
    scores: dict[str, dict[str, list[float]]] = {}

    def add(name: str, phase: np.ndarray, seconds: float, t: np.ndarray) -> None:
        d = scores.setdefault(name, {"rmse": [], "ssim": [], "seconds": []})
        d["rmse"].append(phase_rmse(phase, t))
        d["ssim"].append(phase_ssim(phase, t))
        d["seconds"].append(seconds)

    for e in range(len(x)):
        full = PhaseSeries(x[e], tuple(planes), s.wavelength_um, s.pixel_size_um,
                           source=f"test {e}")
        add("zero phase", np.zeros_like(truth[e]), 0.0, truth[e])
        for name, predictor in models.items():
            r = run_network(predictor, full, name, allow_mismatch=True)
            add(name, r.phase, r.seconds, truth[e])
        tie = {"regularization": s.regularization}
        runs = [("FFT-TIE (2)", "fft_tie", pair, tie),
                (f"multi-plane TIE ({len(multi)})", "multiplane_tie", multi, tie),
                (f"GS ({len(multi)})", "gs", multi, {**tie, "iterations": s.gs_iterations})]
        for label, method, idx, options in runs:
            r = run_baseline(method, full.planes(idx), **options)
            add(label, r.phase, r.seconds, truth[e])
    return {name: {"phase_rmse_rad": float(np.mean(d["rmse"])),
                   "phase_rmse_std": float(np.std(d["rmse"])),
                   "phase_ssim": float(np.mean(d["ssim"])),
                   "ms_per_reconstruction": 1000 * float(np.median(d["seconds"]))}
            for name, d in scores.items()}


def run_phase_bench(settings: PhaseBenchSettings, out: str | Path) -> dict[str, Any]:
    """Train the two small models, test everything, write JSON + figure; returns the report."""
    from mcnn.infer import Predictor

    s = settings
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    checkpoints = {"MCNN (1)": _train(s, "mcnn-1z", [-s.z_um], out / "models"),
                   "MCNN (2)": _train(s, "mcnn-2z", [-s.z_um, s.z_um], out / "models")}
    train_seconds = time.perf_counter() - start
    models = {k: Predictor.from_checkpoint(v, device=s.device) for k, v in checkpoints.items()}
    x, truth, planes = _test_set(s)
    for predictor in models.values():  # warm-up: first calls allocate
        predictor.predict(x[0][: predictor.config.in_channels])
    nominal = _evaluate(s, models, x, truth, planes)
    mismatch: dict[str, dict[str, float]] = {}
    for label, pf, zf in ((f"pixel -{100 * s.mismatch:g}%", 1 - s.mismatch, 1.0),
                          (f"pixel +{100 * s.mismatch:g}%", 1 + s.mismatch, 1.0),
                          (f"distances -{100 * s.mismatch:g}%", 1.0, 1 - s.mismatch),
                          (f"distances +{100 * s.mismatch:g}%", 1.0, 1 + s.mismatch)):
        xm, tm, _ = _test_set(s, pf, zf)
        mismatch[label] = {k: v["phase_rmse_rad"] for k, v in _evaluate(s, models, xm, tm, planes)
                           .items()}
    report: dict[str, Any] = {
        "settings": s.model_dump(mode="json"), "device": str(next(iter(models.values())).device),
        "train_seconds": round(train_seconds, 1), "nominal": nominal, "mismatched": mismatch,
        "mcnn2_over_fft_tie_rmse": nominal["MCNN (2)"]["phase_rmse_rad"]
        / nominal["FFT-TIE (2)"]["phase_rmse_rad"],
        "mcnn1_over_fft_tie_rmse": nominal["MCNN (1)"]["phase_rmse_rad"]
        / nominal["FFT-TIE (2)"]["phase_rmse_rad"],
    }
    report["table"] = _nominal_table(nominal)
    report["mismatch_table"] = _mismatch_table(nominal, mismatch)
    (out / "phase_bench.json").write_text(json.dumps(report, indent=2))
    _figure(s, models, x[0], truth[0], planes, out / "phase_bench.png")
    return report


def _nominal_table(nominal: dict[str, dict[str, float]]) -> str:
    lines = ["| method | phase RMSE (rad) | SSIM | ms / reconstruction |", "|---|---|---|---|"]
    for name, m in nominal.items():
        lines.append(f"| {name} | {m['phase_rmse_rad']:.3f} ± {m['phase_rmse_std']:.3f} | "
                     f"{m['phase_ssim']:.3f} | {m['ms_per_reconstruction']:.1f} |")
    return "\n".join(lines)


def _mismatch_table(nominal: dict[str, dict[str, float]],
                    mismatch: dict[str, dict[str, float]]) -> str:
    cases = list(mismatch)
    lines = ["| method | nominal | " + " | ".join(cases) + " |", "|---|" + "---|" * (len(cases) + 1)]
    for name in nominal:
        values = [f"{mismatch[c][name]:.3f}" for c in cases]
        lines.append(f"| {name} | {nominal[name]['phase_rmse_rad']:.3f} | " + " | ".join(values)
                     + " |")
    return "\n".join(lines)


def _figure(s: PhaseBenchSettings, models: dict[str, Any], x: np.ndarray, truth: np.ndarray,
            planes: list[float], path: Path) -> None:
    from mcnn.phase.compare import run_baseline, run_network
    from mcnn.phase.figures import save_comparison
    from mcnn.phase.series import PhaseSeries

    full = PhaseSeries(x, tuple(planes), s.wavelength_um, s.pixel_size_um)
    panels = {name: run_network(p, full, name, allow_mismatch=True).phase
              for name, p in models.items()}
    pair = full.planes([planes.index(-s.z_um), planes.index(s.z_um)])
    multi = full.planes([planes.index(z) for z in s.planes_um])
    panels["FFT-TIE (2)"] = run_baseline("fft_tie", pair, regularization=s.regularization).phase
    panels["multi-plane TIE"] = run_baseline("multiplane_tie", multi,
                                             regularization=s.regularization).phase
    panels["GS"] = run_baseline("gs", multi, regularization=s.regularization,
                                iterations=s.gs_iterations).phase
    save_comparison(panels, s.pixel_size_um, path, truth)

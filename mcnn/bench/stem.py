"""STEM denoising benchmark: a trained model against oracle filters on frames it was not trained on.

Frames come from the STEM simulator with the checkpoint's training settings *changed* (by default
column spacing x0.8 and probe-blurred column sigma x1.25; any ``StemConfig`` field can be
overridden, and by default scan afterglow and read noise correlated along the scan rows that
training may not have had), with a vacuum region in each frame (the simulator's half-plane beyond a
soft crystal edge), at fixed target input SNRs. The dose for a target SNR
starts at ``dose_for_snr_db`` with the frames' measured ``mean(clean^2)`` and is corrected (secant steps in log
dose, same noise seed) until the set's measured ``snr_db`` is within 0.1 dB, because
detector noise and hot pixels add to the Poisson noise. All arrays are model units: counts / dose,
clean frames mean 1, ``(N, 1, H, W)`` float32.

Methods on the same frames: the MCNN checkpoint, a Gaussian filter with the single sigma that is
best (lowest MSE against the *clean* frames) for each SNR's set (an oracle: a user cannot choose
it so), BM3D with its best single ``sigma_psd`` from a grid (oracle likewise; only when the
optional ``bm3d`` package is importable), and the raw input.

Metrics per method and SNR: PSNR (data range = clean max - min, per frame), SSIM, output SNR
(``snr_db``), atom-position error (sub-pixel peaks of the output vs the simulator's TRUE column
positions after the scan distortion, one ``min_distance`` and one threshold per frame for every
method; nearest match within a radius), recall (of true columns at least ``truth_min_weight`` of the
brightest, away from the border, and not within the resolution of a brighter column: a pair that
close is one peak even in a perfect image; the clean frame's own scores, ``clean_atoms``, are
the ceiling), precision (found peaks with any true column within the radius), false atoms in vacuum (peaks in the vacuum mask per 1000 vacuum px), and time
per frame.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from mcnn.bench.env import environment
from mcnn.bench.timing import time_calls, time_stats

log = logging.getLogger(__name__)

__all__ = [
    "StemBenchSettings",
    "StemBenchResult",
    "best_gaussian_sigma",
    "detect_atoms",
    "false_atoms_per_kpx",
    "make_test_frames",
    "markdown_table",
    "match_atoms",
    "noisy_at_snr",
    "run_stem_bench",
    "shifted_simulator_config",
]

DEFAULT_GAUSSIAN_SIGMAS_PX = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0,
                              16.0, 24.0)


class StemBenchSettings(BaseModel):
    """What ``mcnn-bench stem`` measures; every field has a default."""

    model_config = ConfigDict(extra="forbid")

    snrs_db: list[float] = Field(default=[0.0, -5.0, -10.0], min_length=1,
                                 description="Target input SNRs, dB (mcnn.physics.stem.snr_db).")
    frames: int = Field(default=8, ge=1, le=4096, description="Frames per SNR.")
    size_px: tuple[int, int] = Field(default=(128, 128), description="Frame (H, W), px.")
    seed: int = Field(default=12345, ge=0, description="Seed of frames and noise.")
    spacing_scale: float = Field(
        default=0.8, gt=0, le=10,
        description="Column spacing of the test frames / the training spacing (1: unchanged).")
    atom_sigma_scale: float = Field(
        default=1.25, gt=0, le=10,
        description="Probe-blurred column sigma of the test frames / training sigma (1: unchanged).")
    simulator: dict[str, Any] = Field(
        default_factory=dict,
        description="StemConfig fields of the test frames, over the training ones (after scaling).")
    vacuum_fraction: float = Field(default=0.3, ge=0, le=0.8,
                                   description="Share of each frame beyond the crystal edge.")
    noise_correlation_px: float = Field(
        default=1.0, ge=0, le=20,
        description="Test frames' read-noise correlation length along rows, px (simulator wins).")
    scan_afterglow: float = Field(
        default=0.1, ge=0, lt=1,
        description="Test frames' detector afterglow along rows (a simulator override wins).")
    truth_min_weight: float = Field(
        default=0.25, gt=0, lt=1,
        description="Recall counts true columns at least this x the frame's brightest.")
    peak_threshold: float = Field(
        default=0.15, gt=0, lt=1,
        description="Atom peaks: above min + this x (p99.9 - min) of the clean frame.")
    match_radius_spacings: float = Field(
        default=0.25, gt=0, le=1, description="Match radius, in minimum column spacings.")
    gaussian_sigmas_px: list[float] = Field(default=list(DEFAULT_GAUSSIAN_SIGMAS_PX), min_length=1)
    bm3d_sigma_scales: list[float] = Field(
        default=[0.75, 1.0, 1.5, 2.0, 3.0, 4.0], min_length=1,
        description="BM3D sigma_psd grid, x the set's true noise std (raw - clean).")
    use_bm3d: bool = Field(default=True, description="Run BM3D when the package is importable.")
    resample: bool = Field(
        default=False, description="Also run MCNN at its training pixel size, as stem-denoise "
        "--resample does ('mcnn_resampled'): for test frames at another simulator.pixel_size_pm.")
    flip_ensemble: bool = Field(
        default=False, description="Also run MCNN averaged over each frame's mirror images, as "
        "stem-denoise --flip-ensemble does ('mcnn_flips', 4x the compute).")
    figure_snr_db: float | None = Field(default=None, description="SNR of the figure (default: lowest).")
    timing_repeats: int = Field(default=5, ge=1, le=1000, description="Timed calls per method.")
    device: str = Field(default="auto", description="auto, cpu, cuda, cuda:N (for the model).")


@dataclass
class StemBenchResult:
    """``summary``: the JSON; ``figure``: panels (name -> (H, W) arrays) of the figure's frames,
    with ``vacuum`` masks and ``false_atoms`` (name -> (K, 2) row, col peaks in vacuum)."""

    summary: dict[str, Any]
    figure: list[dict[str, np.ndarray]] = field(default_factory=list)
    false_atoms: list[dict[str, np.ndarray]] = field(default_factory=list)
    pixel_size_pm: float | None = None


# ------------------------------------------------------------------------------------ frames
def shifted_simulator_config(training_simulator: dict[str, Any], spacing_scale: float = 0.8,
                          atom_sigma_scale: float = 1.25,
                          overrides: dict[str, Any] | None = None) -> Any:
    """The test frames' ``StemConfig``: the training one with spacing and sigma ranges (in px,
    from the pm ranges where set) scaled, then ``overrides`` applied. Natural-image targets and
    vacuum of training are switched off (``make_test_frames`` cuts its own vacuum). A
    ``pixel_size_pm`` override is applied first, so the pm ranges of training give the px ranges at
    the new pixel size (test frames from a microscope with finer or coarser pixels)."""
    from mcnn.config_io import validate
    from mcnn.physics.config import StemConfig

    pixel = {k: v for k, v in (overrides or {}).items() if k == "pixel_size_pm"}
    base = validate(StemConfig, {**training_simulator, **pixel},
                    "simulator (the test frames' StemConfig)")
    spacing, sigma = base.px_ranges()
    fields = base.model_dump()
    fields.update(
        spacing_pm_range=None, atom_sigma_pm_range=None,
        spacing_px_range=(spacing[0] * spacing_scale, spacing[1] * spacing_scale),
        atom_sigma_px_range=(sigma[0] * atom_sigma_scale, sigma[1] * atom_sigma_scale),
        natural_image_fraction=0.0, vacuum_probability=0.0,
    )
    fields.update(overrides or {})
    return validate(StemConfig, fields, "simulator (the test frames' StemConfig)")


def make_test_frames(config: Any, content: Any, frames: int, size_px: tuple[int, int], seed: int,
                     vacuum_fraction: float, min_weight_fraction: float = 0.05) -> Any:
    """The simulator's clean frames ``(N, 1, H, W)`` (mean 1) with a vacuum half-plane of share
    ``vacuum_fraction`` and their ground truth (``mcnn.physics.stem.StemTruth``: true column
    positions above ``min_weight_fraction`` of the brightest, the vacuum mask: pixels at least
    one maximum column spacing beyond the soft edge)."""
    from mcnn.physics.stem import StemAdfSimulator

    if vacuum_fraction > 0:
        config = config.model_copy(update={
            "vacuum_probability": 1.0, "vacuum_fraction_range": (vacuum_fraction, vacuum_fraction),
            "vacuum_particle_fraction": 0.0})
    else:
        config = config.model_copy(update={"vacuum_probability": 0.0})
    truth = StemAdfSimulator(config).clean_with_truth(
        frames, size_px, torch.Generator().manual_seed(seed), content, min_weight_fraction)
    truth.clean = truth.clean.float()
    return truth


MAX_BENCH_DOSE = 1e9
"""Electrons per pixel the SNR search stops at (float32 Poisson sampling overflows far above)."""


def noisy_at_snr(config: Any, clean: torch.Tensor, target_db: float, seed: int,
                 iterations: int = 8, tolerance_db: float = 0.5) -> tuple[torch.Tensor, float, float]:
    """Noisy frames at one dose for the whole set whose measured mean ``snr_db`` is
    ``target_db`` (within 0.1 dB when ``iterations`` allow). Returns (noisy, the dose they were
    made at, measured dB). A target the simulator cannot reach within ``tolerance_db`` (errors that
    do not shrink with dose cap the SNR: scan jitter and drift, read noise, row offsets, hot
    pixels, afterglow) is a one-line ValueError, not frames at another SNR."""
    from mcnn.physics.stem import StemAdfSimulator, dose_for_snr_db, snr_db

    sim = StemAdfSimulator(config)
    power = float(clean.double().pow(2).mean())
    dose = dose_for_snr_db(target_db, power)
    noisy, measured, used = clean, float("inf"), dose
    prev: tuple[float, float] | None = None  # (10 log10 dose, measured dB) of the last try
    for _ in range(iterations):
        g = torch.Generator().manual_seed(seed)
        noisy = sim(clean, torch.full((clean.shape[0],), dose), g).float()
        measured, used = float(snr_db(clean, noisy).mean()), dose
        if abs(measured - target_db) < 0.1:
            break
        # SNR rises 1 dB per dB of dose under Poisson noise, 2 under read noise: a secant step
        # in log dose after the first (slope 1) try.
        here = (10 * math.log10(dose), measured)
        slope = 1.0
        if prev is not None and abs(here[0] - prev[0]) > 1e-6:
            slope = min(max((here[1] - prev[1]) / (here[0] - prev[0]), 0.5), 2.5)
        prev = here
        if dose >= MAX_BENCH_DOSE:
            break  # the SNR no longer follows the dose
        dose = min(dose * 10 ** ((target_db - measured) / slope / 10), MAX_BENCH_DOSE)
    if not abs(measured - target_db) <= tolerance_db:
        raise ValueError(f"input SNR {target_db:g} dB is out of reach for these test frames: at "
                         f"{used:.3g} e/px they measure {measured:.2f} dB (errors that do not "
                         "shrink with dose cap it: scan jitter, drift and afterglow against the "
                         "undistorted clean frame, read noise, row offsets, hot pixels); ask for "
                         "a lower SNR")
    return noisy, used, measured


# ------------------------------------------------------------------------------------- atoms
def detect_atoms(image: np.ndarray, min_distance_px: int, threshold: float) -> np.ndarray:
    """Atom columns as local maxima above ``threshold`` (absolute), refined to sub-pixel by a
    parabola through each peak and its neighbours along each axis: ``(K, 2)`` float (row, col)."""
    from skimage.feature import peak_local_max

    img = np.asarray(image, np.float32)
    peaks = peak_local_max(img, min_distance=max(int(min_distance_px), 1),
                           threshold_abs=float(threshold), exclude_border=True)
    out = peaks.astype(np.float64)
    if len(peaks) == 0:
        return out.reshape(0, 2)
    r, c = peaks[:, 0], peaks[:, 1]
    for axis, (prev, nxt) in enumerate(((img[r - 1, c], img[r + 1, c]),
                                         (img[r, c - 1], img[r, c + 1]))):
        centre = img[r, c]
        den = prev - 2 * centre + nxt
        safe = np.where(den < 0, den, -1.0)
        out[:, axis] += np.where(den < 0, np.clip(0.5 * (prev - nxt) / safe, -0.5, 0.5), 0.0)
    return out


def match_atoms(found: np.ndarray, truth: np.ndarray, radius_px: float,
                any_truth: np.ndarray | None = None) -> dict[str, float]:
    """Nearest-neighbour matching within ``radius_px``: distances of matched true atoms (px),
    ``recall`` (``truth`` atoms with a found one within the radius) and ``precision`` (found atoms
    with an atom of ``any_truth``, default ``truth``, within the radius: a found faint column is
    not a false one). Counts are returned for pooling over frames."""
    from scipy.spatial import cKDTree

    every = truth if any_truth is None else any_truth
    n_true, n_found = len(truth), len(found)
    matched_found = 0
    if n_found and len(every):
        d_found, _ = cKDTree(every).query(found, distance_upper_bound=radius_px)
        matched_found = int(np.isfinite(d_found).sum())
    if n_true == 0 or n_found == 0:
        return {"distance_sum_px": 0.0, "matched_true": 0, "matched_found": matched_found,
                "true": n_true, "found": n_found}
    d_true, _ = cKDTree(found).query(truth, distance_upper_bound=radius_px)
    ok = np.isfinite(d_true)
    return {"distance_sum_px": float(d_true[ok].sum()), "matched_true": int(ok.sum()),
            "matched_found": matched_found, "true": n_true, "found": n_found}


def false_atoms_per_kpx(peaks: np.ndarray, vacuum: np.ndarray) -> tuple[int, int]:
    """(peaks inside the vacuum mask, vacuum pixels); peaks may be sub-pixel (rounded here)."""
    if len(peaks) == 0:
        return 0, int(vacuum.sum())
    r, c = _pixels(peaks, vacuum.shape)
    return int(vacuum[r, c].sum()), int(vacuum.sum())


def _pixels(peaks: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    idx = np.rint(peaks).astype(int)
    return np.clip(idx[:, 0], 0, shape[0] - 1), np.clip(idx[:, 1], 0, shape[1] - 1)


# ------------------------------------------------------------------------------------ filters
def gaussian(frames: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian filter of each ``(N, H, W)`` frame (reflecting borders)."""
    from scipy.ndimage import gaussian_filter

    return np.stack([gaussian_filter(f, sigma_px, mode="reflect") for f in frames])


def best_gaussian_sigma(noisy: np.ndarray, clean: np.ndarray,
                        sigmas_px: list[float]) -> tuple[float, list[float]]:
    """The sigma on the grid with the lowest MSE against the clean frames over the whole set
    (an oracle), and the MSE of every sigma."""
    mse = [float(np.mean((gaussian(noisy, s) - clean) ** 2)) for s in sigmas_px]
    return float(sigmas_px[int(np.argmin(mse))]), mse


def _bm3d_module() -> Any:
    try:
        import bm3d
    except ImportError:
        return None
    return bm3d


def bm3d_frames(bm3d: Any, frames: np.ndarray, sigma: float) -> np.ndarray:
    return np.stack([np.asarray(bm3d.bm3d(f, sigma_psd=sigma), np.float32) for f in frames])


def anscombe(electrons: np.ndarray) -> np.ndarray:
    """Poisson counts -> values of unit noise variance (Anscombe 1948)."""
    return 2.0 * np.sqrt(np.maximum(electrons, 0.0) + 3.0 / 8.0)


def inverse_anscombe(d: np.ndarray) -> np.ndarray:
    """The closed-form approximation of the exact unbiased inverse of :func:`anscombe`
    (Makitalo & Foi 2011): the algebraic inverse is biased at the few counts per pixel met
    here."""
    d = np.maximum(np.asarray(d, np.float64), 2.0 * math.sqrt(3.0 / 8.0))
    r = math.sqrt(1.5)
    return np.maximum(0.25 * d**2 + 0.25 * r / d - 11 / 8 / d**2 + 5 / 8 * r / d**3 - 1 / 8, 0.0)


def bm3d_vst_frames(bm3d: Any, frames: np.ndarray, dose_e_per_px: float) -> np.ndarray:
    """BM3D as photon-limited imaging uses it, with no oracle: frames (electrons / dose) to
    electrons, the Anscombe transform, BM3D at sigma_psd 1 (the transform's noise), the unbiased
    inverse, back to the frames' units."""
    out = [inverse_anscombe(bm3d.bm3d(anscombe(f * dose_e_per_px), sigma_psd=1.0))
           / dose_e_per_px for f in np.asarray(frames, np.float64)]
    return np.stack(out).astype(np.float32)


# ------------------------------------------------------------------------------------ metrics
def _frame_metrics(out: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    from skimage.metrics import structural_similarity

    rng = float(clean.max() - clean.min()) or 1.0
    mse = float(np.mean((out - clean) ** 2))
    psnr = 10 * math.log10(rng**2 / max(mse, 1e-30))
    ssim = float(structural_similarity(clean, out.astype(np.float64 if clean.dtype == np.float64
                                                              else np.float32), data_range=rng))
    return psnr, ssim


def true_atoms(positions: np.ndarray, weights: np.ndarray, shape: tuple[int, int],
               min_weight: float, border_px: int, resolve_px: float = 0.0) -> np.ndarray:
    """The true columns a detector can be asked to find: weight at least ``min_weight`` of the
    brightest, at least ``border_px`` inside the frame (peaks on the border are not searched) and
    no column as bright or brighter within ``resolve_px`` (a pair that close is one peak even in
    a perfect image)."""
    from scipy.spatial import cKDTree

    h, w = shape
    p = np.asarray(positions, np.float64).reshape(-1, 2)
    wt = np.asarray(weights, np.float64).reshape(-1)
    ok = (wt >= min_weight) & (p[:, 0] >= border_px) & (p[:, 1] >= border_px) \
        & (p[:, 0] <= h - 1 - border_px) & (p[:, 1] <= w - 1 - border_px)
    if resolve_px > 0 and len(p) > 1:
        for i, j in cKDTree(p).query_pairs(resolve_px):
            ok[i if (wt[i], -i) < (wt[j], -j) else j] = False  # the dimmer of the pair
    return p[ok]


def method_metrics(out: np.ndarray, clean: np.ndarray, vacuum: np.ndarray, min_distance_px: int,
                   radius_px: float, threshold_fraction: float, pixel_size_pm: float | None,
                   keep_vacuum_peaks: int = 0, positions: list[np.ndarray] | None = None,
                   weights: list[np.ndarray] | None = None, truth_min_weight: float = 0.25,
                   sigma_px: list[float] | None = None,
                   ) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Metrics of one method's outputs ``(N, H, W)`` against ``clean`` and the true column
    ``positions`` ``(K, 2)`` (row, col) with their relative ``weights`` per frame (without them,
    the peaks of the clean frame stand in); pooled over frames."""
    from mcnn.physics.stem import snr_db

    psnr, ssim, pooled, false_n, vac_px, vac_peaks = [], [], [], 0, 0, []
    for i in range(len(clean)):
        p, s = _frame_metrics(out[i], clean[i])
        psnr.append(p)
        ssim.append(s)
        lo = float(clean[i].min())
        thr = lo + threshold_fraction * (float(np.percentile(clean[i], 99.9)) - lo)
        found = detect_atoms(out[i], min_distance_px, thr)
        if positions is None or weights is None:
            truth = every = detect_atoms(clean[i], min_distance_px, thr)
        else:
            every = np.asarray(positions[i], np.float64).reshape(-1, 2)
            # Separate peaks need a Chebyshev distance above min_distance and a dip between them.
            resolve = max(math.sqrt(2) * max(int(min_distance_px), 1),
                          2.5 * (sigma_px[i] if sigma_px is not None else 0.0))
            truth = true_atoms(every, weights[i], clean[i].shape, truth_min_weight,
                               max(int(min_distance_px), 1), resolve)
        pooled.append(match_atoms(found, truth, radius_px, every))
        n, v = false_atoms_per_kpx(found, vacuum[i])
        false_n, vac_px = false_n + n, vac_px + v
        if i < keep_vacuum_peaks:
            vac_peaks.append(found[vacuum[i][_pixels(found, vacuum[i].shape)]] if len(found)
                             else found)
    snr = snr_db(torch.from_numpy(clean[:, None]), torch.from_numpy(out[:, None].astype(np.float32)))
    matched = sum(m["matched_true"] for m in pooled)
    err_px = sum(m["distance_sum_px"] for m in pooled) / matched if matched else None
    total_true = sum(m["true"] for m in pooled)
    total_found = sum(m["found"] for m in pooled)
    metrics = {
        "psnr_db": round(float(np.mean(psnr)), 3), "ssim": round(float(np.mean(ssim)), 4),
        "snr_db": round(float(snr.mean()), 3),
        "atom_error_px": None if err_px is None else round(err_px, 4),
        "atom_error_pm": None if err_px is None or pixel_size_pm is None
        else round(err_px * pixel_size_pm, 2),
        "atom_recall": round(matched / total_true, 4) if total_true else None,
        "atom_precision": round(sum(m["matched_found"] for m in pooled) / total_found, 4)
        if total_found else None,
        "atoms_true": total_true, "atoms_found": total_found,
        "false_atoms_in_vacuum": false_n,
        "false_atoms_per_1000_vacuum_px": round(1000 * false_n / vac_px, 3) if vac_px else None,
    }
    return metrics, vac_peaks


# ------------------------------------------------------------------------------------ the run
def _resampling(settings: StemBenchSettings, size_px: tuple[int, int], pixel_size_pm: float | None,
                data: dict[str, Any], multiple: int) -> Any:
    """The test frames' move to the model's training pixel size (None: ``resample`` off)."""
    from mcnn.stem.resample import FrameResampling

    if not settings.resample:
        return None
    trained = (data.get("simulator") or {}).get("pixel_size_pm")
    if not trained or not pixel_size_pm:
        raise ValueError("resample: needs the pixel size of the test frames and of the training "
                         "(simulator.pixel_size_pm in both)")
    return FrameResampling.between(size_px, (pixel_size_pm, pixel_size_pm), float(trained),
                                   min_px=multiple)


def run_resampled(predictor: Any, noisy: np.ndarray, resampling: Any) -> np.ndarray:
    """``noisy`` (N, H, W) in model units through the model on its own pixel grid and back, the
    path of ``stem-denoise --resample``: model units are electrons / dose, and electrons per model
    pixel and the dose per model pixel scale alike, so a mean-preserving resampling moves them."""
    out = []
    for frame in noisy:
        x = resampling.to_model(frame).astype(np.float32)
        out.append(resampling.to_input(np.asarray(predictor.predict(x))))
    return np.stack(out).astype(np.float32)


def _load(checkpoint: Path, device: str) -> tuple[Any, dict[str, Any]]:
    from mcnn.infer import Predictor

    predictor = Predictor.from_checkpoint(checkpoint, device=device, precision="fp32")
    cfg = predictor.config
    if (cfg.in_channels, cfg.out_channels, cfg.output_scale) != (1, 1, 1):
        raise ValueError(f"{checkpoint}: model maps {cfg.in_channels} -> {cfg.out_channels} "
                         f"channels at scale {cfg.output_scale}; STEM frames need 1 -> 1 at scale 1")
    data = predictor.training_data or {}
    sim = data.get("simulator") or {}
    if sim.get("name") != "stem":
        what = "no training data" if not data else f"{sim.get('name') or data.get('kind')!r} data"
        raise ValueError(f"{checkpoint}: not a STEM model (trained on {what}); the STEM benchmark "
                         "needs a checkpoint trained on the STEM simulator")
    return predictor, data


def run_stem_bench(checkpoint: Path, settings: StemBenchSettings,
                   progress: Callable[[str], None] | None = None) -> StemBenchResult:
    """Every method x SNR on the same frames; returns the summary and the figure's panels."""
    from pydantic import TypeAdapter

    from mcnn.physics.build import build_content
    from mcnn.physics.config import ContentConfig

    say = progress or log.info
    predictor, data = _load(Path(checkpoint), settings.device)
    h, w = settings.size_px
    multiple = 2 ** predictor.config.depth
    if h % multiple or w % multiple or h < multiple or w < multiple:
        raise ValueError(f"size_px ({h}, {w}): must be multiples of {multiple} (2**model depth)")
    train_cfg = data["simulator"]
    test_cfg = shifted_simulator_config(
        train_cfg, settings.spacing_scale, settings.atom_sigma_scale,
        {"noise_correlation_px": settings.noise_correlation_px,
         "scan_afterglow": settings.scan_afterglow, "scan_afterglow_range": None,
         **settings.simulator})
    content = build_content(TypeAdapter(ContentConfig).validate_python(
        data.get("content") or {"kind": "procedural"}), split="val")
    pixel_size_pm = test_cfg.pixel_size_pm
    spacing, sigma = test_cfg.px_ranges()
    min_distance = max(1, int(0.4 * spacing[0]))
    radius = settings.match_radius_spacings * spacing[0]
    truth = make_test_frames(test_cfg, content, settings.frames, (h, w), settings.seed,
                             settings.vacuum_fraction)
    clean_t = truth.clean
    clean, vacuum = clean_t[:, 0].numpy(), truth.vacuum.numpy()
    positions = [p.numpy() for p in truth.positions]
    weights = [wt.numpy() for wt in truth.weights]
    scoring: dict[str, Any] = dict(positions=positions, weights=weights, truth_min_weight=settings.truth_min_weight,
                   sigma_px=[float(v) for v in truth.sigma_px])
    bm3d = _bm3d_module() if settings.use_bm3d else None
    notes = ["gaussian: oracle, its sigma is chosen per SNR against the clean frames"]
    if not settings.use_bm3d:
        notes.append("bm3d: skipped (use_bm3d false)")
    elif bm3d is None:
        notes.append("bm3d: skipped, the optional bm3d package is not installed (pip install bm3d)")
    else:
        notes.append("bm3d: oracle, its sigma_psd is chosen per SNR against the clean frames")
        notes.append("bm3d_vst: no oracle; BM3D at sigma_psd 1 after the Anscombe transform of "
                     "the electrons, then its unbiased inverse (photon-limited practice)")
    figure_snr = settings.figure_snr_db if settings.figure_snr_db is not None \
        else min(settings.snrs_db)
    resampling = _resampling(settings, (h, w), pixel_size_pm, data, multiple)
    if resampling is not None:
        notes.append(f"mcnn_resampled: MCNN on the frames resampled to its training pixel size "
                     f"({resampling.pixel_size_model_pm:g} pm, {resampling.shape_model_px[0]} x "
                     f"{resampling.shape_model_px[1]} px) and back, as stem-denoise --resample")
    flips = None
    if settings.flip_ensemble:
        from mcnn.infer import Predictor

        flips = Predictor(predictor.model, device=predictor.device, precision="fp32",
                          flip_ensemble=True)
        notes.append("mcnn_flips: MCNN averaged over the frame and its mirror images in x, y "
                     "and both, as stem-denoise --flip-ensemble")
    result = StemBenchResult(summary={}, pixel_size_pm=pixel_size_pm)
    rows, timing_inputs = [], None
    for k, target in enumerate(settings.snrs_db):
        noisy_t, dose, measured = noisy_at_snr(test_cfg, clean_t, target, settings.seed + 1 + k)
        noisy = noisy_t[:, 0].numpy()
        say(f"SNR {target:g} dB: dose {dose:.4g} e/px, measured input SNR {measured:.2f} dB")
        outputs: dict[str, np.ndarray] = {"raw": noisy}
        with torch.inference_mode():
            outputs["mcnn"] = np.asarray(predictor.predict(noisy[:, None]))[:, 0]
            if flips is not None:
                outputs["mcnn_flips"] = np.asarray(flips.predict(noisy[:, None]))[:, 0]
            if resampling is not None:
                outputs["mcnn_resampled"] = run_resampled(predictor, noisy, resampling)
        g_sigma, g_mse = best_gaussian_sigma(noisy, clean, settings.gaussian_sigmas_px)
        outputs["gaussian"] = gaussian(noisy, g_sigma)
        row: dict[str, Any] = {"target_snr_db": target, "input_snr_db": round(measured, 3),
                               "dose_e_per_px": round(dose, 5), "gaussian_sigma_px": g_sigma,
                               "gaussian_mse_by_sigma": dict(zip(
                                   [str(s) for s in settings.gaussian_sigmas_px],
                                   [round(m, 6) for m in g_mse], strict=True))}
        if bm3d is not None:
            noise_std = float(np.sqrt(np.mean((noisy - clean) ** 2)))
            grid = [s * noise_std for s in settings.bm3d_sigma_scales]
            cands = [bm3d_frames(bm3d, noisy, s) for s in grid]
            mse = [float(np.mean((c - clean) ** 2)) for c in cands]
            best = int(np.argmin(mse))
            outputs["bm3d"] = cands[best]
            row["bm3d_sigma_psd"] = round(grid[best], 5)
            row["bm3d_mse_by_sigma"] = {f"{s:.5g}": round(m, 6) for s, m in zip(grid, mse,
                                                                                 strict=True)}
            outputs["bm3d_vst"] = bm3d_vst_frames(bm3d, noisy, dose)
        edges = {"gaussian": (settings.gaussian_sigmas_px.index(g_sigma),
                              len(settings.gaussian_sigmas_px))}
        if bm3d is not None:
            edges["bm3d"] = (best, len(settings.bm3d_sigma_scales))
        for name, (idx, n) in edges.items():
            if n > 1 and idx in (0, n - 1):
                notes.append(f"{name}: at {target:g} dB the best sigma is at the edge of its "
                             "grid; widen the grid")
        keep = 2 if target == figure_snr else 0
        methods: dict[str, Any] = {}
        vac_peaks: dict[str, list[np.ndarray]] = {}
        for name, out in outputs.items():
            methods[name], vac_peaks[name] = method_metrics(
                out.astype(np.float32), clean, vacuum, min_distance, radius,
                settings.peak_threshold, pixel_size_pm, keep, **scoring)
        clean_m, vac_peaks["clean"] = method_metrics(clean, clean, vacuum, min_distance, radius,
                                                     settings.peak_threshold, pixel_size_pm, keep,
                                                     **scoring)
        row["clean_false_atoms_per_1000_vacuum_px"] = clean_m["false_atoms_per_1000_vacuum_px"]
        # What the peak detector reaches on the noiseless frame: the ceiling of every method.
        row["clean_atoms"] = {k: clean_m[k] for k in ("atom_error_px", "atom_recall",
                                                       "atom_precision")}
        row["methods"] = methods
        rows.append(row)
        say("  " + ", ".join(f"{n}: {m['psnr_db']:.2f} dB / SSIM {m['ssim']:.3f}"
                             for n, m in methods.items()))
        if keep:
            for i in range(min(keep, len(clean))):
                result.figure.append({**{n: o[i] for n, o in outputs.items()},
                                      "clean": clean[i], "vacuum": vacuum[i]})
                result.false_atoms.append({n: p[i] for n, p in vac_peaks.items() if len(p) > i})
            timing_inputs = (noisy[0], g_sigma, row.get("bm3d_sigma_psd"))
        if timing_inputs is None and k == len(settings.snrs_db) - 1:
            timing_inputs = (noisy[0], g_sigma, row.get("bm3d_sigma_psd"))
    assert timing_inputs is not None  # set on the last SNR at the latest
    frame, g_sigma, b_sigma = timing_inputs
    timing = _time_methods(predictor, frame, g_sigma, bm3d, b_sigma, settings.timing_repeats,
                           flips)
    result.summary = {
        "benchmark": "stem", "checkpoint": str(checkpoint),
        "settings": settings.model_dump(mode="json"),
        "frames_per_snr": settings.frames, "size_px": [h, w], "pixel_size_pm": pixel_size_pm,
        "training_simulator": train_cfg, "test_simulator": test_cfg.model_dump(mode="json"),
        "training_px_ranges": dict(zip(("spacing", "atom_sigma"), _px_ranges(train_cfg),
                                       strict=True)),
        "test_px_ranges": {"spacing": list(spacing), "atom_sigma": list(sigma)},
        "vacuum_px_per_frame": round(float(vacuum.sum()) / len(vacuum), 1),
        "peak_min_distance_px": min_distance, "match_radius_px": round(radius, 3),
        "notes": notes, "snrs": rows, "timing_ms_per_frame": timing,
        "environment": environment(predictor.device),
    }
    result.summary["table_markdown"] = markdown_table(result.summary)
    return result


def _px_ranges(sim: dict[str, Any]) -> tuple[list[float], list[float]]:
    from mcnn.physics.config import StemConfig

    spacing, sigma = StemConfig.model_validate(sim).px_ranges()
    return list(spacing), list(sigma)


def _time_methods(predictor: Any, frame: np.ndarray, g_sigma: float, bm3d: Any,
                  b_sigma: float | None, repeats: int, flips: Any = None) -> dict[str, Any]:
    """Median ms per frame of each method on one frame (host array in, host array out)."""
    from scipy.ndimage import gaussian_filter

    cpu = torch.device("cpu")
    x = np.ascontiguousarray(frame, np.float32)

    def run(p: Any) -> Callable[[], Any]:
        def call() -> None:
            with torch.inference_mode():
                p.predict(x)
        return call

    fns: dict[str, tuple[Callable[[], Any], torch.device]] = {
        "mcnn": (run(predictor), predictor.device),
        "gaussian": (lambda: gaussian_filter(x, g_sigma, mode="reflect"), cpu),
    }
    if flips is not None:
        fns["mcnn_flips"] = (run(flips), flips.device)
    if bm3d is not None and b_sigma is not None:
        fns["bm3d"] = (lambda: bm3d.bm3d(x, sigma_psd=b_sigma), cpu)
    out: dict[str, Any] = {}
    for name, (fn, dev) in fns.items():
        stats = time_stats(time_calls(fn, dev, repeats=repeats, warmup=1 if name == "bm3d" else 2))
        out[name] = {"ms_median": stats["ms_median"], "ms_p10": stats["ms_p10"],
                     "ms_p90": stats["ms_p90"], "repeats": stats["repeats"],
                     "device": str(dev)}
    if "bm3d" in out:
        out["mcnn_speedup_vs_bm3d"] = round(out["bm3d"]["ms_median"] / out["mcnn"]["ms_median"], 2)
    return out


def markdown_table(summary: dict[str, Any]) -> str:
    """A README-ready table: one row per SNR x method."""
    px = summary.get("pixel_size_pm")
    head = ("| input SNR dB (dose e/px) | method | PSNR dB | SSIM | output SNR dB | atom error "
            + ("px (pm)" if px else "px") + " | recall / precision | false atoms / 1000 vacuum px "
            "| ms / frame |")
    lines = [head, "|" + "---|" * 9]
    timing = summary.get("timing_ms_per_frame", {})
    for row in summary["snrs"]:
        for name, m in row["methods"].items():
            label = {"mcnn": "MCNN", "raw": "raw", "mcnn_resampled": "MCNN (resampled)",
                     "mcnn_flips": "MCNN (flip ensemble)",
                     "gaussian": f"Gaussian (oracle sigma {row['gaussian_sigma_px']:g} px)",
                     "bm3d": f"BM3D (oracle sigma {row.get('bm3d_sigma_psd', 0):.3g})",
                     "bm3d_vst": "BM3D + Anscombe (no oracle)"}[name]
            err = "-" if m["atom_error_px"] is None else f"{m['atom_error_px']:.2f}" + (
                f" ({m['atom_error_pm']:.0f})" if m["atom_error_pm"] is not None else "")
            rp = "-" if m["atom_recall"] is None else (
                f"{m['atom_recall']:.2f} / " + ("-" if m["atom_precision"] is None
                                                 else f"{m['atom_precision']:.2f}"))
            fa = "-" if m["false_atoms_per_1000_vacuum_px"] is None \
                else f"{m['false_atoms_per_1000_vacuum_px']:.2f}"
            ms = timing.get(name, {}).get("ms_median")
            lines.append(f"| {row['input_snr_db']:.1f} ({row['dose_e_per_px']:.3g}) | {label} | "
                         f"{m['psnr_db']:.2f} | {m['ssim']:.3f} | {m['snr_db']:.2f} | {err} | {rp} "
                         f"| {fa} | {'-' if ms is None else f'{ms:.3g}'} |")
    return "\n".join(lines)

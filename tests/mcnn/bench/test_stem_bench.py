"""The STEM benchmark with a tiny model trained here: finite numbers, the oracle Gaussian sigma,
atom matching and false atoms in vacuum, BM3D when importable, and one-line errors."""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from mcnn.bench.stem import (
    StemBenchSettings,
    anscombe,
    best_gaussian_sigma,
    bm3d_vst_frames,
    detect_atoms,
    false_atoms_per_kpx,
    gaussian,
    inverse_anscombe,
    make_test_frames,
    match_atoms,
    method_metrics,
    noisy_at_snr,
    run_stem_bench,
    shifted_simulator_config,
)
from mcnn.physics.procedural import ProceduralContent
from mcnn.physics.stem import StemAdfSimulator

ROOT = Path(__file__).resolve().parents[3]
STEM_SIM = {"name": "stem", "pixel_size_pm": 20.0, "spacing_pm_range": [200.0, 400.0],
            "atom_sigma_pm_range": [25.0, 45.0], "detector_noise_e": 0.1}


@pytest.fixture(scope="module")
def run(tiny_stem_run: Path) -> Path:
    return tiny_stem_run


FAST = dict(frames=2, size_px=(48, 48), snrs_db=[-5.0], timing_repeats=1,
            gaussian_sigmas_px=[0.5, 1.0, 2.0, 4.0], device="cpu")


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def test_every_number_is_finite_and_the_gaussian_sigma_is_the_argmin_of_its_grid(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "bm3d", None)  # as if the optional package were absent
    # random lattices only: the detector's ceiling below is for them (Si dumbbells and faint O
    # columns of the real structures the CPU config also draws are harder to resolve)
    result = run_stem_bench(run, StemBenchSettings(**FAST, simulator={
        "structure_fraction": 0.0, "cluster_frame_fraction": 0.0}))
    s = result.summary
    (row,) = s["snrs"]
    assert abs(row["input_snr_db"] - -5.0) < 0.1  # the dose was corrected to the target
    assert set(row["methods"]) == {"raw", "mcnn", "gaussian"}
    assert any("bm3d: skipped" in n for n in s["notes"])
    for m in row["methods"].values():
        for key in ("psnr_db", "ssim", "snr_db", "false_atoms_per_1000_vacuum_px"):
            assert _finite(m[key]), key
        assert m["atoms_true"] > 0
    grid, mse = FAST["gaussian_sigmas_px"], list(row["gaussian_mse_by_sigma"].values())
    assert row["gaussian_sigma_px"] == grid[int(np.argmin(mse))]
    # the oracle Gaussian beats the raw input; the clean frame has no atoms in vacuum
    assert row["methods"]["gaussian"]["psnr_db"] > row["methods"]["raw"]["psnr_db"]
    assert row["clean_false_atoms_per_1000_vacuum_px"] == 0
    # test frames are from another setting than training: spacing x0.8, sigma x1.25 (in px)
    train = s["training_px_ranges"]
    assert s["test_px_ranges"]["spacing"] == pytest.approx([0.8 * v for v in train["spacing"]])
    assert s["test_px_ranges"]["atom_sigma"] == pytest.approx([1.25 * v for v in
                                                               train["atom_sigma"]])
    assert s["test_simulator"]["noise_correlation_px"] > 0  # correlated noise training lacked
    assert s["training_simulator"]["noise_correlation_px"] == 0
    clean = row["clean_atoms"]
    assert clean["atom_recall"] > 0.8 and clean["atom_precision"] > 0.8
    assert s["timing_ms_per_frame"]["mcnn"]["ms_median"] > 0
    assert "| MCNN |" in s["table_markdown"] and len(result.figure) == 2


def test_a_best_sigma_at_the_edge_of_its_grid_is_noted(run):
    result = run_stem_bench(run, StemBenchSettings(**{**FAST, "gaussian_sigmas_px": [0.1, 0.2]}))
    assert result.summary["snrs"][0]["gaussian_sigma_px"] == 0.2
    assert any(n.startswith("gaussian: at -5 dB the best sigma is at the edge") for n in
               result.summary["notes"])


def test_oracle_sigma_is_the_grid_argmin_on_known_noise():
    rng = np.random.default_rng(0)
    clean = np.stack([gaussian(rng.random((32, 32)).astype(np.float32), 3.0) for _ in range(2)])
    noisy = clean + rng.normal(0, 0.3, clean.shape).astype(np.float32)
    grid = [0.0, 0.5, 1.0, 2.0, 3.0]
    sigma, mse = best_gaussian_sigma(noisy, clean, grid)
    assert sigma == grid[int(np.argmin(mse))] and sigma > 0
    assert mse[0] == pytest.approx(float(np.mean((noisy - clean) ** 2)), rel=1e-5)


def test_clean_against_clean_matches_every_atom_with_zero_error():
    cfg = shifted_simulator_config(STEM_SIM)
    truth = make_test_frames(cfg, ProceduralContent(), 1, (64, 64), 3, 0.3)
    clean, vacuum = truth.clean, truth.vacuum
    image = clean[0, 0].numpy()
    assert vacuum.float().mean() > 0.05 and image[vacuum[0].numpy()].max() < 0.05
    peaks = detect_atoms(image, 3, 0.5)
    assert len(peaks) > 5
    m = match_atoms(peaks, peaks, 2.0)
    assert m["distance_sum_px"] == 0 and m["matched_true"] == m["true"] == len(peaks)
    assert m["matched_found"] == m["found"] == len(peaks)
    assert false_atoms_per_kpx(peaks, vacuum[0].numpy())[0] == 0


def test_a_blob_placed_in_vacuum_is_one_false_atom():
    image = np.zeros((40, 40), np.float32)
    yy, xx = np.mgrid[:40, :40]
    image += np.exp(-((yy - 10) ** 2 + (xx - 10) ** 2) / 4.0)  # an atom in the crystal
    image += np.exp(-((yy - 30) ** 2 + (xx - 28) ** 2) / 4.0)  # a blob in vacuum
    vacuum = np.zeros((40, 40), bool)
    vacuum[20:, :] = True
    peaks = detect_atoms(image, 3, 0.3)
    assert false_atoms_per_kpx(peaks, vacuum) == (1, 800)
    truth = np.array([[10, 10]])
    m = match_atoms(peaks, truth, 2.0)
    assert (m["matched_true"], m["matched_found"], m["found"]) == (1, 1, 2)  # precision 0.5
    shifted = match_atoms(np.array([[11, 10]]), truth, 2.0)
    assert shifted["distance_sum_px"] == pytest.approx(1.0)


def test_dose_is_corrected_to_the_measured_target_snr():
    cfg = shifted_simulator_config(STEM_SIM, overrides={"detector_noise_e": 0.3})
    clean = make_test_frames(cfg, ProceduralContent(), 2, (32, 32), 1, 0.0).clean
    for target in (0.0, -10.0):
        noisy, dose, measured = noisy_at_snr(cfg, clean, target, seed=4)
        assert abs(measured - target) < 0.1 and dose > 0
        # the dose returned is the one the frames were made at
        again = StemAdfSimulator(cfg)(clean, torch.full((2,), dose), torch.Generator().manual_seed(4))
        assert torch.equal(again.float(), noisy)
    # afterglow against the undistorted clean frame caps the SNR (about 21 dB at 0.3) and hot
    # pixels make it stop following the dose: refused in one line, not frames at another SNR
    for overrides in ({"scan_afterglow": 0.3}, {"hot_pixel_fraction": 0.01}):
        capped = shifted_simulator_config(STEM_SIM, overrides=overrides)
        clean = make_test_frames(capped, ProceduralContent(), 2, (32, 32), 1, 0.0).clean
        with pytest.raises(ValueError, match=r"input SNR 30 dB is out of reach .* measure "):
            noisy_at_snr(capped, clean, 30.0, seed=4)


def test_bm3d_runs_with_its_oracle_sigma_when_importable(run, monkeypatch):
    """A stand-in ``bm3d`` module (a Gaussian filter of width sigma_psd) exercises the BM3D path."""
    fake = types.ModuleType("bm3d")
    fake.bm3d = lambda z, sigma_psd: gaussian(z[None], float(sigma_psd))[0]
    monkeypatch.setitem(sys.modules, "bm3d", fake)
    result = run_stem_bench(run, StemBenchSettings(**FAST, bm3d_sigma_scales=[0.1, 0.5, 1.0]))
    (row,) = result.summary["snrs"]
    assert "bm3d" in row["methods"] and _finite(row["methods"]["bm3d"]["psnr_db"])
    mse = list(row["bm3d_mse_by_sigma"].values())
    assert row["bm3d_sigma_psd"] == pytest.approx(float(list(row["bm3d_mse_by_sigma"])[
        int(np.argmin(mse))]), rel=1e-3)
    assert result.summary["timing_ms_per_frame"]["mcnn_speedup_vs_bm3d"] > 0
    assert "BM3D (oracle" in result.summary["table_markdown"]
    assert _finite(row["methods"]["bm3d_vst"]["psnr_db"])
    assert "BM3D + Anscombe (no oracle)" in result.summary["table_markdown"]


@pytest.mark.parametrize("mean_e", [0.05, 0.5, 2.0, 20.0])
def test_the_anscombe_inverse_is_unbiased_at_low_counts(mean_e):
    """The closed-form exact unbiased inverse recovers the mean count where the algebraic
    inverse ((d / 2)^2 - 3/8) is 10-30% low at 2 e/px and below."""
    rng = np.random.default_rng(0)
    d = anscombe(rng.poisson(mean_e, 2_000_000)).mean()
    assert inverse_anscombe(np.array([d]))[0] == pytest.approx(mean_e, rel=0.01)
    if mean_e <= 2.0:
        assert (d / 2) ** 2 - 3 / 8 < 0.9 * mean_e


def test_bm3d_after_anscombe_keeps_the_dose_of_a_flat_field():
    bm3d = pytest.importorskip("bm3d")  # the optional package (its own licence); skipped without
    rng = np.random.default_rng(1)
    frames = rng.poisson(2.0, (1, 64, 64)) / 2.0  # model units: electrons / dose
    out = bm3d_vst_frames(bm3d, frames, 2.0)
    assert float(out.mean()) == pytest.approx(1.0, rel=0.03)
    assert float(out.std()) < 0.25 * float(frames.std())


def test_a_model_without_stem_training_data_is_refused(run, tmp_path):
    from mcnn.models import MCNN, ModelConfig
    from mcnn.weights import save_model

    path = tmp_path / "lap.safetensors"
    save_model(MCNN(ModelConfig(depth=2, base_width=4, max_width=8, branches=1)), path,
               {"kind": "simulated", "simulator": {"name": "laplacian"}})
    with pytest.raises(ValueError, match="not a STEM model.*'laplacian'"):
        run_stem_bench(path, StemBenchSettings(**FAST))
    with pytest.raises(ValueError, match="multiples of 4"):
        run_stem_bench(run, StemBenchSettings(**{**FAST, "size_px": (50, 48)}))


def test_a_perfect_output_finds_the_true_columns_and_a_shifted_one_does_not():
    # Scored against the simulator's true positions (after the scan distortion), not against
    # peaks of the clean frame: the clean frame itself gets recall ~1 and a sub-pixel error.
    cfg = shifted_simulator_config(STEM_SIM, overrides={"atom_sigma_px_range": (1.2, 1.6)})
    truth = make_test_frames(cfg, ProceduralContent(), 3, (96, 96), 7, 0.3)
    clean, vacuum = truth.clean[:, 0].numpy(), truth.vacuum.numpy()
    spacing = cfg.px_ranges()[0][0]
    args = (clean, vacuum, max(1, int(0.4 * spacing)), 0.25 * spacing, 0.15, None)
    scoring = dict(positions=[p.numpy() for p in truth.positions],
                   weights=[w.numpy() for w in truth.weights],
                   sigma_px=[float(v) for v in truth.sigma_px])
    perfect, _ = method_metrics(clean, *args, **scoring)
    assert perfect["atoms_true"] > 60
    assert perfect["atom_recall"] > 0.95 and perfect["atom_precision"] > 0.95
    assert perfect["atom_error_px"] < 0.2 and perfect["false_atoms_in_vacuum"] == 0
    moved, _ = method_metrics(np.roll(clean, 2, axis=2), *args, **scoring)  # 2 px to the right
    assert moved["atom_recall"] < 0.5 or moved["atom_error_px"] > 1.5
    for pos, mask in zip(truth.positions, truth.vacuum, strict=True):
        r, c = pos.round().long().unbind(1)
        assert not mask[r, c].any()  # no true column in vacuum


def test_test_frames_have_correlated_noise_that_training_did_not():
    cfg = shifted_simulator_config(STEM_SIM, overrides={"noise_correlation_px": 1.0,
                                                        "scan_afterglow": 0.1})
    assert StemBenchSettings().noise_correlation_px > 0 and StemBenchSettings().scan_afterglow > 0
    clean = make_test_frames(cfg, ProceduralContent(), 2, (64, 64), 1, 0.0).clean
    noisy, _, _ = noisy_at_snr(cfg, clean, 0.0, seed=2)
    r = (noisy - clean)[:, 0].numpy()
    r = r - r.mean()
    along = float((r[:, :, 1:] * r[:, :, :-1]).mean() / (r**2).mean())
    across = float((r[:, 1:] * r[:, :-1]).mean() / (r**2).mean())
    assert along > 0.08 and abs(across) < 0.05


def test_a_pixel_size_override_keeps_the_physical_lengths_of_training():
    """Test frames 'from a microscope with 10 pm pixels': columns twice as many px apart and wide
    as at the training 20 pm (the pm ranges are converted at the new pixel size), then scaled."""
    at20 = shifted_simulator_config(STEM_SIM)
    at10 = shifted_simulator_config(STEM_SIM, overrides={"pixel_size_pm": 10.0})
    assert at10.pixel_size_pm == 10.0
    assert at20.spacing_px_range == pytest.approx((200 / 20 * 0.8, 400 / 20 * 0.8))
    assert at10.spacing_px_range == pytest.approx(tuple(2 * v for v in at20.spacing_px_range))
    assert at10.atom_sigma_px_range == pytest.approx(
        tuple(2 * v for v in at20.atom_sigma_px_range))


def test_resample_scores_mcnn_at_its_training_pixel_size(run, monkeypatch):
    """Test frames at 10 pm for a 20 pm model: 'mcnn_resampled' runs the model on the 2x binned
    frames and brings the output back to the test grid, as stem-denoise --resample does."""
    from mcnn.bench.stem import run_resampled
    from mcnn.stem.resample import FrameResampling

    monkeypatch.setitem(sys.modules, "bm3d", None)
    result = run_stem_bench(run, StemBenchSettings(**{**FAST, "size_px": (64, 64)}, resample=True,
                                                   simulator={"pixel_size_pm": 10.0}))
    (row,) = result.summary["snrs"]
    assert set(row["methods"]) == {"raw", "mcnn", "mcnn_resampled", "gaussian"}
    assert all(_finite(row["methods"]["mcnn_resampled"][k]) for k in ("psnr_db", "ssim"))
    assert any("mcnn_resampled" in n and "32 x 32 px" in n for n in result.summary["notes"])
    assert "| MCNN (resampled) |" in result.summary["table_markdown"]

    class Identity:  # what the resampling alone does to a frame
        def predict(self, x):
            return x

    grid = FrameResampling.between((64, 64), (10.0, 10.0), 20.0)
    frames = np.random.default_rng(0).poisson(2.0, (2, 64, 64)).astype(np.float32) / 2.0
    out = run_resampled(Identity(), frames, grid)
    assert out.shape == frames.shape
    assert np.allclose(out.mean(axis=(1, 2)), frames.mean(axis=(1, 2)), rtol=1e-4)
    binned = frames.reshape(2, 32, 2, 32, 2).mean(axis=(2, 4))
    assert np.allclose(grid.to_model(frames[0]), binned[0], atol=1e-6)


def test_flip_ensemble_is_scored_and_timed_beside_the_single_pass(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "bm3d", None)
    result = run_stem_bench(run, StemBenchSettings(**FAST, flip_ensemble=True))
    (row,) = result.summary["snrs"]
    single, flips = row["methods"]["mcnn"], row["methods"]["mcnn_flips"]
    assert all(_finite(flips[k]) for k in ("psnr_db", "ssim"))
    assert flips["psnr_db"] != single["psnr_db"]  # a different output, on the same frames
    timing = result.summary["timing_ms_per_frame"]
    assert timing["mcnn_flips"]["ms_median"] > 0 and "| MCNN (flip ensemble) |" in \
        result.summary["table_markdown"]

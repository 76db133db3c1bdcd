"""Noise calibration recovers a known detector from synthetic Poisson frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mcnn.physics.build import build_content
from mcnn.physics.config import ProceduralContentConfig, StemConfig
from mcnn.physics.stem import StemAdfSimulator
from mcnn.stem.calibration import NoiseCalibration, fit_noise

GAIN, OFFSET, READ = 6.0, 1500.0, 3.0


def _clean(size=(192, 192), seed=0) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    sim = StemAdfSimulator(StemConfig())
    content = build_content(ProceduralContentConfig())
    return sim.clean(1, size, g, content)[0, 0].numpy().astype(np.float64)


def _frames(clean, dose, n, seed=1, read=READ):
    rng = np.random.default_rng(seed)
    return [OFFSET + GAIN * rng.poisson(dose * clean) + read * rng.standard_normal(clean.shape)
            for _ in range(n)]


def test_poisson_frame_variance_is_mean_times_gain():
    rng = np.random.default_rng(0)
    counts = GAIN * rng.poisson(4.0, size=200_000)
    assert counts.var() == pytest.approx(counts.mean() * GAIN, rel=0.02)


def test_gain_and_offset_from_frame_pairs_with_dark_frame():
    clean = _clean()
    frames = _frames(clean, 8.0, 6)
    dark = _frames(np.zeros_like(clean), 0.0, 2, seed=9)
    cal = fit_noise(frames, dark=dark)
    assert cal.method == "frame_pairs" and cal.offset_from == "dark"
    assert cal.gain_counts_per_e == pytest.approx(GAIN, rel=0.04)
    assert cal.offset_counts == pytest.approx(OFFSET, abs=0.5)
    assert cal.read_noise_counts == pytest.approx(READ, rel=0.05)


def test_offset_from_intercept_without_dark():
    clean = _clean(seed=3)
    cal = fit_noise(_frames(clean, 8.0, 6, read=0.0))
    assert cal.offset_from == "intercept"
    assert cal.gain_counts_per_e == pytest.approx(GAIN, rel=0.04)
    assert cal.offset_counts == pytest.approx(OFFSET, abs=0.05 * GAIN * 8.0)


def test_single_frame_estimate_is_close_on_smooth_content():
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[0:128, 0:128]
    clean = 0.2 + 1.8 * (xx / 127.0)  # a smooth ramp: neighbour residual holds noise only
    frame = OFFSET + GAIN * rng.poisson(10.0 * clean)
    cal = fit_noise([frame])
    assert cal.method == "single_frame"
    assert cal.gain_counts_per_e == pytest.approx(GAIN, rel=0.05)


def test_calibration_round_trips_json_and_converts_counts(tmp_path):
    cal = NoiseCalibration(gain_counts_per_e=2.0, offset_counts=100.0, read_noise_counts=1.0)
    path = cal.save(tmp_path / "noise.json")
    again = NoiseCalibration.load(path)
    assert again == cal
    e = again.electrons(np.array([100.0, 104.0]))
    np.testing.assert_allclose(e, [0.0, 2.0])
    np.testing.assert_allclose(again.counts(e), [100.0, 104.0])
    assert again.simulator_overrides() == {"detector_noise_e": 0.5}
    (tmp_path / "bad.json").write_text('{"gain_counts_per_e": -1, "offset_counts": 0}')
    with pytest.raises(ValueError, match="bad.json: not a noise calibration"):
        NoiseCalibration.load(tmp_path / "bad.json")


def test_processed_frames_are_refused():
    rng = np.random.default_rng(5)
    frames = [np.full((64, 64), 3.0) + 0.01 * rng.standard_normal((64, 64)) * 0 for _ in range(2)]
    frames[1] = frames[1] + 1e-9 * rng.standard_normal((64, 64))
    with pytest.raises(ValueError):
        fit_noise(frames)

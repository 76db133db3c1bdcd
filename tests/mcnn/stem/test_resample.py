"""Resampling STEM frames between pixel sizes keeps electrons per unit area, keeps Poisson
statistics under whole-factor binning, and comes back to the input's exact grid."""

from __future__ import annotations

import numpy as np
import pytest

from mcnn.stem.normalise import FrameUnits, frame_to_model_units, from_model_units
from mcnn.stem.resample import (
    FrameResampling,
    resample_electrons,
    resample_mean,
    resampled_shape,
)


def _smooth(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return 1.0 + 0.5 * np.sin(xx / 9.0) * np.cos(yy / 11.0)


@pytest.mark.parametrize("p_in, p_out", [(10.0, 20.0), (10.0, 23.0), (20.0, 10.0), (40.0, 15.0)])
def test_electrons_over_the_field_are_kept(p_in, p_out):
    rng = np.random.default_rng(0)
    electrons = rng.poisson(5.0 * _smooth(96, 80)).astype(np.float64)
    out = resample_electrons(electrons, p_in, p_out)
    assert out.shape == (round(96 * p_in / p_out), round(80 * p_in / p_out))
    assert out.sum() == pytest.approx(electrons.sum(), rel=0.01)
    # per pixel: scaled by the area ratio
    assert out.mean() == pytest.approx(electrons.mean() * (p_out / p_in) ** 2, rel=0.03)


def test_integer_binning_keeps_poisson_statistics():
    rng = np.random.default_rng(1)
    electrons = rng.poisson(0.7, (256, 256)).astype(np.float64)
    binned = resample_electrons(electrons, 10.0, 20.0)  # 2x2 bins: sums of 4 Poisson(0.7)
    assert binned.shape == (128, 128)
    assert np.allclose(binned, np.round(binned))  # whole electrons: sums, not interpolations
    assert binned.mean() == pytest.approx(2.8, rel=0.02)
    assert binned.var() / binned.mean() == pytest.approx(1.0, abs=0.04)


def test_a_smooth_image_comes_back_close_to_itself():
    image = _smooth(64, 72)
    for p_in in (10.0, 13.0, 30.0):
        grid = FrameResampling.between((64, 72), (p_in, p_in), 20.0)
        back = grid.to_input(grid.to_model(image))
        assert back.shape == (64, 72)
        assert np.abs(back - image).max() < 0.03 * image.mean()


def test_sizes_and_the_grid_it_reports():
    assert resampled_shape((100, 50), (0.5, 0.5)) == (50, 25)
    assert resampled_shape((33, 33), (0.5, 0.5)) == (16, 16)  # round(16.5) is 16
    grid = FrameResampling.between((90, 60), (10.0, 12.0), 20.0)
    assert grid.factor_yx == (0.5, 0.6) and grid.shape_model_px == (45, 36)
    assert grid.electrons_scale == pytest.approx(90 * 60 / (45 * 36))
    assert grid.pixel_size_model_grid_pm_yx == pytest.approx((20.0, 20.0))
    assert not grid.upsamples and FrameResampling.between((32, 32), (40, 40), 20).upsamples
    assert FrameResampling.between((32, 32), (20.0, 20.0), 20.0).identity
    assert resample_mean(np.ones((8, 8), np.uint16), (4, 4)).dtype == np.float32


def test_a_frame_that_would_become_too_small_is_one_line():
    with pytest.raises(ValueError, match=r"^a 40 x 40 px frame .* would be 10 x 10 px, smaller "
                       r"than 16 px$"):
        FrameResampling.between((40, 40), (5.0, 5.0), 20.0)


def test_model_units_and_back_through_a_resampling():
    """frame_to_model_units on the model grid: dose per model pixel (given doses scaled by the
    area ratio), mean ~1; from_model_units brings counts back on the input grid."""
    rng = np.random.default_rng(2)
    counts = 100.0 + 4.0 * rng.poisson(2.0 * _smooth(64, 64))
    cal_units = FrameUnits(100.0, 4.0, 2.0, "calibration", "given")
    grid = FrameResampling.between((64, 64), (10.0, 10.0), 20.0)

    from mcnn.stem.calibration import NoiseCalibration

    cal = NoiseCalibration(gain_counts_per_e=4.0, offset_counts=100.0)
    x, units, warnings = frame_to_model_units(counts, calibration=cal, dose_e_per_px=2.0,
                                              resampling=grid, training_data={"simulator": {
                                                  "name": "stem", "pixel_size_pm": 20.0}})
    assert x.shape == (32, 32) and warnings == []
    assert units.dose_e_per_px == pytest.approx(8.0)  # 2 e per 10 pm pixel = 8 per 20 pm pixel
    assert float(x.mean()) == pytest.approx(1.0, rel=0.05)
    _, est, _ = frame_to_model_units(counts, calibration=cal, resampling=grid)
    assert est.dose_e_per_px == pytest.approx(4 * float((counts - 100).mean() / 4), rel=1e-6)
    back = from_model_units(x, units, "counts", grid)
    assert back.shape == (64, 64)
    assert float(back.mean()) == pytest.approx(float(counts.mean()), rel=0.01)
    # without resampling the same numbers as before
    same = from_model_units(x, cal_units, "electrons")
    assert float(same.mean()) == pytest.approx(2.0 * float(x.mean()))

"""Classical phase retrieval recovers simulated ground truth far better than a zero-phase guess."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mcnn.phase.baselines import BASELINES
from mcnn.phase.gs import gerchberg_saxton
from mcnn.phase.metrics import phase_rmse, phase_ssim
from mcnn.phase.tie import axial_derivative, fft_tie, multiplane_tie, solve_tie
from mcnn.physics import DefocusConfig, DefocusSeriesSimulator, ProceduralContent

WAVELENGTH_UM, PIXEL_UM = 0.532, 1.0


def simulated(defocus_um, phase_max_rad=1.0, amplitude_contrast=0.0, photons=None, seed=1):
    cfg = DefocusConfig(defocus_um=defocus_um, phase_max_rad=phase_max_rad,
                        amplitude_contrast=amplitude_contrast, photons_per_px=photons,
                        predict_amplitude=amplitude_contrast > 0)
    x, y = DefocusSeriesSimulator(cfg).sample(1, (48, 48), torch.Generator().manual_seed(seed),
                                              ProceduralContent())
    return x[0].numpy(), y[0, 0].numpy()


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_beats_a_zero_phase_guess_by_far(name) -> None:
    planes = [-4.0, -2.0, 2.0, 4.0]
    intensities, truth = simulated(planes)
    phase = BASELINES[name](intensities, planes, WAVELENGTH_UM, PIXEL_UM)
    assert phase.shape == truth.shape and phase.dtype == np.float32
    assert abs(float(phase.mean())) < 1e-5
    zero = phase_rmse(np.zeros_like(truth), truth)
    assert phase_rmse(phase, truth) < 0.15 * zero
    assert phase_ssim(phase, truth) > 0.9


def test_tie_inverts_the_laplacian_exactly_without_regularisation() -> None:
    from scipy.ndimage import gaussian_filter

    # band-limited (an imaging system passes no Nyquist-frequency detail)
    truth = gaussian_filter(np.random.default_rng(0).normal(size=(32, 32)), 2.0, mode="mirror")
    truth = (truth - truth.mean()) / truth.std()
    # the TIE right-hand side of a pure phase object with even (reflecting) boundaries
    ext = np.concatenate([truth, truth[-2:0:-1]], 0)
    ext = np.concatenate([ext, ext[:, -2:0:-1]], 1)
    q = 2 * np.pi * np.fft.fftfreq(ext.shape[0])
    lap = np.fft.ifft2(np.fft.fft2(ext) * -(q[:, None] ** 2 + q[None, :] ** 2)).real[:32, :32]
    k = 2 * np.pi / WAVELENGTH_UM
    for uniform in (True, False):
        phase = solve_tie(-lap / k, np.ones((32, 32)), WAVELENGTH_UM, PIXEL_UM,
                          regularization=0.0, uniform=uniform)
        assert phase_rmse(phase, truth) < 1e-3 * truth.std()


def test_general_tie_handles_amplitude_better_than_the_uniform_form() -> None:
    planes = [-2.0, 0.0, 2.0]
    intensities, truth = simulated(planes, amplitude_contrast=0.6, seed=3)
    general = fft_tie(intensities, planes, WAVELENGTH_UM, PIXEL_UM)
    uniform = fft_tie(intensities, planes, WAVELENGTH_UM, PIXEL_UM, uniform=True)
    assert phase_rmse(general, truth) < phase_rmse(uniform, truth)


def test_fft_tie_refuses_a_series_without_a_symmetric_pair() -> None:
    with pytest.raises(ValueError, match=r"symmetric pair.*\[5.0, 10.0\]"):
        fft_tie(np.ones((2, 8, 8)), [5.0, 10.0], WAVELENGTH_UM, PIXEL_UM)
    with pytest.raises(ValueError, match="2 planes but 3 defocus"):
        multiplane_tie(np.ones((2, 8, 8)), [1.0, 2.0, 3.0], WAVELENGTH_UM, PIXEL_UM)


def test_least_squares_axial_derivative_recovers_a_quadratic_profile() -> None:
    z = np.array([-3.0, -1.0, 2.0, 5.0])
    stack = (1.0 + 0.2 * z + 0.01 * z**2)[:, None, None] * np.ones((4, 2, 2))
    focus, slope = axial_derivative(stack, z, degree=2)
    np.testing.assert_allclose(focus, 1.0, atol=1e-10)
    np.testing.assert_allclose(slope, 0.2, atol=1e-10)


def test_gerchberg_saxton_improves_on_its_tie_start_at_larger_defocus() -> None:
    planes = [-10.0, 10.0]
    intensities, truth = simulated(planes, phase_max_rad=3.0, seed=2)
    start = gerchberg_saxton(intensities, planes, WAVELENGTH_UM, PIXEL_UM, iterations=0)
    refined = gerchberg_saxton(intensities, planes, WAVELENGTH_UM, PIXEL_UM, iterations=20)
    np.testing.assert_allclose(start, multiplane_tie(intensities, planes, WAVELENGTH_UM, PIXEL_UM),
                               atol=1e-5)
    assert phase_rmse(refined, truth) < 0.95 * phase_rmse(start, truth)


def test_metrics_ignore_the_piston() -> None:
    truth = np.random.default_rng(1).normal(size=(16, 16))
    assert phase_rmse(truth + 3.0, truth) < 1e-12
    assert phase_ssim(truth + 3.0, truth) == pytest.approx(1.0)
    assert phase_rmse(np.zeros_like(truth), truth) == pytest.approx(truth.std())

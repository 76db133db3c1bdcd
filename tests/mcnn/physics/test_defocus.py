"""Defocus series: the angular-spectrum propagator obeys the physics it claims to."""

import math

import pytest
import torch

from mcnn.physics import (
    DefocusConfig,
    DefocusJitter,
    DefocusSeriesSimulator,
    ParameterSampler,
    ProceduralContent,
)
from mcnn.physics.defocus import propagate
from mcnn.physics.functional import power_law_field

WAVELENGTH_UM, PIXEL_UM = 0.5, 1.0


def random_field(size: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    amplitude = 0.5 + 0.5 * power_law_field(1, 1, (size, size), 3.0, g)
    phase = 3.0 * power_law_field(1, 1, (size, size), 3.0, g)
    return torch.polar(amplitude, phase)


def spectral_laplacian(x: torch.Tensor, pixel_um: float) -> torch.Tensor:
    h, w = x.shape[-2:]
    fy = torch.fft.fftfreq(h, d=pixel_um).view(h, 1)
    fx = torch.fft.fftfreq(w, d=pixel_um).view(1, w)
    return torch.fft.ifft2(torch.fft.fft2(x) * (-((2 * math.pi) ** 2) * (fx**2 + fy**2))).real


def test_propagation_conserves_energy() -> None:
    field = random_field()
    z = torch.tensor([[-50.0, 10.0, 200.0]])
    out = propagate(field, z, WAVELENGTH_UM, PIXEL_UM)
    energy_in = (field.abs() ** 2).sum()
    energy_out = (out.abs() ** 2).sum(dim=(-2, -1))
    torch.testing.assert_close(energy_out, energy_in.expand(1, 3), rtol=1e-4, atol=0)


def test_forward_then_backward_propagation_recovers_the_field() -> None:
    field = random_field(seed=1)
    there = propagate(field, torch.tensor([[37.0]]), WAVELENGTH_UM, PIXEL_UM)
    back = propagate(there, torch.tensor([[-37.0]]), WAVELENGTH_UM, PIXEL_UM)
    assert (there - field).abs().max() > 0.1  # it really moved
    torch.testing.assert_close(back, field, atol=1e-4, rtol=0)


def test_zero_defocus_records_the_squared_amplitude() -> None:
    sim = DefocusSeriesSimulator(DefocusConfig(defocus_um=[0.0]))
    g = torch.Generator().manual_seed(2)
    amplitude = 0.3 + 0.7 * torch.rand(2, 1, 32, 32, generator=g)
    phase = 6.0 * torch.rand(2, 1, 32, 32, generator=g)
    intensity = sim(phase, amplitude, torch.zeros(2, 1))
    torch.testing.assert_close(intensity, amplitude**2, atol=1e-5, rtol=1e-5)


def test_weak_phase_object_follows_the_transport_of_intensity_equation() -> None:
    # dI/dz = -(lambda / 2 pi) * I0 * laplacian(phase) for a pure, weak phase object (I0 = 1).
    g = torch.Generator().manual_seed(0)
    phase = 0.02 * (power_law_field(1, 1, (64, 64), 5.0, g) - 0.5)
    field = torch.polar(torch.ones_like(phase), phase)
    dz_um = 1.0
    intensity = (
        propagate(field, torch.tensor([[dz_um, -dz_um]]), WAVELENGTH_UM, PIXEL_UM).abs() ** 2
    )
    didz = (intensity[:, 0] - intensity[:, 1]) / (2 * dz_um)
    expected = -(WAVELENGTH_UM / (2 * math.pi)) * spectral_laplacian(phase[:, 0], PIXEL_UM)
    relative_error = (didz - expected).norm() / expected.norm()
    assert relative_error < 0.03
    # A phase bump (positive laplacian at its rim, negative at its top) focuses light for z > 0.
    peak = phase[0, 0].argmax()
    assert didz.flatten()[peak] > 0


def test_poisson_noise_keeps_the_mean_and_has_variance_intensity_over_photons() -> None:
    cfg = DefocusConfig(defocus_um=[0.0], photons_per_px=50.0, amplitude_contrast=0.5)
    sim = DefocusSeriesSimulator(cfg)
    clean = torch.full((4, 1, 64, 64), 0.8)
    noisy = sim.add_noise(clean, torch.Generator().manual_seed(0))
    assert abs(noisy.mean().item() - 0.8) < 0.01
    assert abs(noisy.var().item() / (0.8 / 50.0) - 1) < 0.05
    assert torch.allclose(noisy * 50, torch.round(noisy * 50), atol=1e-4)  # whole photons


def test_sample_channels_targets_and_noiseless_consistency() -> None:
    cfg = DefocusConfig(
        defocus_um=[-10.0, 0.0, 10.0, 20.0], amplitude_contrast=0.4, predict_amplitude=True
    )
    sim = DefocusSeriesSimulator(cfg)
    assert (sim.in_channels, sim.out_channels, sim.scale) == (4, 2, 1)
    inputs, targets = sim.sample(3, (32, 48), torch.Generator().manual_seed(5), ProceduralContent())
    assert inputs.shape == (3, 4, 32, 48) and targets.shape == (3, 2, 32, 48)
    torch.testing.assert_close(
        targets[:, :1].mean(dim=(2, 3)), torch.zeros(3, 1), atol=1e-5, rtol=0
    )
    amplitude = targets[:, 1:]
    assert amplitude.min() >= 0.6 - 1e-6 and amplitude.max() <= 1.0 + 1e-6
    torch.testing.assert_close(inputs[:, 1:2], amplitude**2, atol=1e-4, rtol=1e-4)  # z = 0 plane


def test_defocus_jitter_stays_within_its_bounds_and_is_reproducible() -> None:
    sampler = DefocusJitter((-10.0, 10.0), focus_offset_um=2.0, jitter_um=0.5)
    assert isinstance(sampler, ParameterSampler)
    a = sampler.sample(256, torch.Generator().manual_seed(1))["defocus_um"]
    b = sampler.sample(256, torch.Generator().manual_seed(1))["defocus_um"]
    assert torch.equal(a, b)
    deviation = a - torch.tensor([[-10.0, 10.0]])
    assert deviation.abs().max() <= 2.5 + 1e-5
    assert deviation.std() > 0.5  # the offset really varies
    common = deviation.mean(dim=1)
    assert ((deviation[:, 0] - deviation[:, 1]).abs() <= 1.0 + 1e-5).all()
    assert common.abs().max() > 1.0


def test_config_rejects_pixels_finer_than_half_a_wavelength() -> None:
    with pytest.raises(ValueError, match=r"pixel_size_um \(0.1\).*wavelength_um / 2 \(0.25"):
        DefocusConfig(wavelength_um=0.5, pixel_size_um=0.1)
    with pytest.raises(ValueError):
        DefocusConfig(defocus_mm=[1.0])

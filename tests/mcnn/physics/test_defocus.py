"""Defocus series: the angular-spectrum propagator obeys the physics it claims to."""

import math

import numpy as np
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


# -- physics added with the phase-retrieval application --------------------------------------------

from mcnn.physics.config import PlaneSpacingConfig  # noqa: E402
from mcnn.physics.defocus import (  # noqa: E402
    coherence_envelope,
    diffraction_pad_px,
    pad_field,
)


def second_moment_width_um(intensity: torch.Tensor, pixel_um: float) -> float:
    """1/e^2 radius w of a Gaussian beam from its intensity: <x^2> = w^2 / 4."""
    h, w = intensity.shape[-2:]
    x = (torch.arange(w, dtype=torch.float64) - w // 2) * pixel_um
    profile = intensity.double().sum(dim=-2).flatten()
    return 2 * math.sqrt(float((profile * x**2).sum() / profile.sum()))


@pytest.mark.parametrize("propagator", ["angular_spectrum", "fresnel"])
@pytest.mark.parametrize("medium_index", [1.0, 1.33])
def test_gaussian_beam_width_follows_the_analytic_formula(propagator, medium_index) -> None:
    # w(z) = w0 sqrt(1 + (z / zR)^2), zR = pi w0^2 n / lambda (wavelength in the medium)
    pixel_um, w0_um, size = 0.5, 4.0, 192
    r = (torch.arange(size, dtype=torch.float64) - size // 2) * pixel_um
    field = torch.exp(-(r.view(-1, 1) ** 2 + r.view(1, -1) ** 2) / w0_um**2)
    field = field.to(torch.complex64).view(1, 1, size, size)
    z = torch.tensor([[0.0, 60.0, 150.0]])
    out = propagate(field, z, WAVELENGTH_UM, pixel_um, medium_index=medium_index,
                    propagator=propagator)
    z_r = math.pi * w0_um**2 * medium_index / WAVELENGTH_UM
    for k, z_um in enumerate(z[0].tolist()):
        expected = w0_um * math.sqrt(1 + (z_um / z_r) ** 2)
        measured = second_moment_width_um(out[0, k].abs() ** 2, pixel_um)
        assert abs(measured / expected - 1) < 0.01, (z_um, measured, expected)
    assert second_moment_width_um(out[0, 2].abs() ** 2, pixel_um) > 1.5 * w0_um  # it spread


def test_fresnel_matches_angular_spectrum_for_paraxial_fields_and_conserves_energy() -> None:
    field = random_field(seed=3)
    z = torch.tensor([[-30.0, 30.0]])
    a = propagate(field, z, WAVELENGTH_UM, PIXEL_UM)
    f = propagate(field, z, WAVELENGTH_UM, PIXEL_UM, propagator="fresnel")
    assert (a - f).abs().max() < 0.05  # smooth field: small angles
    torch.testing.assert_close((f.abs() ** 2).sum(dim=(-2, -1)),
                               (field.abs() ** 2).sum().expand(1, 2), rtol=1e-4, atol=0)
    back = propagate(f[:, :1], -z[:, :1], WAVELENGTH_UM, PIXEL_UM, propagator="fresnel")
    torch.testing.assert_close(back, field, atol=1e-4, rtol=0)


def test_pure_phase_object_is_flat_in_focus_and_not_out_of_focus() -> None:
    sim = DefocusSeriesSimulator(DefocusConfig(defocus_um=[0.0, 20.0], phase_max_rad=3.0))
    phase = 3.0 * power_law_field(2, 1, (40, 40), 3.0, torch.Generator().manual_seed(4))
    intensity = sim(phase, torch.ones_like(phase), torch.tensor([[0.0, 20.0]] * 2))
    torch.testing.assert_close(intensity[:, 0], torch.ones(2, 40, 40), atol=1e-5, rtol=0)
    assert intensity[:, 1].std() > 0.05


def test_refractive_index_shortens_the_wavelength() -> None:
    # in a medium of index n, distance z behaves as z / n does in vacuum (same lambda z / n)
    field = random_field(seed=5)
    in_water = propagate(field, torch.tensor([[40.0]]), WAVELENGTH_UM, PIXEL_UM, medium_index=1.33)
    in_vacuum = propagate(field, torch.tensor([[40.0 / 1.33]]), WAVELENGTH_UM, PIXEL_UM,
                          propagator="fresnel")
    in_water_fresnel = propagate(field, torch.tensor([[40.0]]), WAVELENGTH_UM, PIXEL_UM,
                                 medium_index=1.33, propagator="fresnel")
    torch.testing.assert_close(in_water_fresnel, in_vacuum, atol=1e-4, rtol=0)
    assert (in_water.abs() - in_vacuum.abs()).abs().max() < 0.05


def test_numerical_aperture_cuts_high_frequencies() -> None:
    field = random_field(seed=6)
    na = 0.1  # cut-off NA / lambda = 0.2 cycles/um
    out = propagate(field, torch.tensor([[0.0]]), WAVELENGTH_UM, PIXEL_UM, numerical_aperture=na)
    spectrum = torch.fft.fft2(out[0, 0]).abs()
    fy = torch.fft.fftfreq(64).view(-1, 1)
    fx = torch.fft.fftfreq(64).view(1, -1)
    outside = (fy**2 + fx**2).sqrt() > na / WAVELENGTH_UM
    assert spectrum[outside].max() < 1e-3 * spectrum.max()
    assert (out[0, 0] - field[0, 0]).abs().max() > 1e-3  # something was removed


def test_bandwidth_envelope_equals_averaging_over_wavelengths_for_a_weak_object() -> None:
    g = torch.Generator().manual_seed(7)
    phase = 0.05 * power_law_field(1, 1, (64, 64), 2.5, g)
    field = torch.polar(torch.ones_like(phase), phase)
    z, fwhm_um = torch.tensor([[80.0]]), 0.15
    sigma = fwhm_um / (2 * math.sqrt(2 * math.log(2)))
    x, wts = np.polynomial.hermite_e.hermegauss(21)  # Gauss-Hermite rule for a normal spectrum
    nodes, weights = x.tolist(), (wts / wts.sum()).tolist()
    averaged = sum(
        wk * propagate(field, z, WAVELENGTH_UM + sigma * xk, PIXEL_UM,
                              propagator="fresnel").abs() ** 2
        for xk, wk in zip(nodes, weights, strict=True)
    )
    coherent = propagate(field, z, WAVELENGTH_UM, PIXEL_UM, propagator="fresnel").abs() ** 2
    envelope = coherence_envelope((64, 64), z, WAVELENGTH_UM, PIXEL_UM, bandwidth_um=fwhm_um)
    damped = torch.fft.ifft2(torch.fft.fft2(coherent) * envelope).real
    contrast = (averaged - 1).norm()
    assert (damped - averaged).norm() / contrast < 0.05
    assert (coherent - averaged).norm() / contrast > 0.2  # the damping matters here


def test_spatial_coherence_envelope_is_one_in_focus_and_damps_defocused_detail() -> None:
    z = torch.tensor([[0.0, 50.0]])
    e = coherence_envelope((32, 32), z, WAVELENGTH_UM, PIXEL_UM, illumination_na=0.05)
    torch.testing.assert_close(e[0, 0], torch.ones(32, 32))
    assert e[0, 1, 0, 0] == 1.0 and e[0, 1].abs().min() < 0.5


def test_auto_pad_keeps_light_from_wrapping_around_at_large_distances() -> None:
    # an aperture at the left edge of a small frame, propagated far: no light may enter on the right
    h, w, z = 24, 40, 400.0
    amplitude = torch.zeros(1, 1, h, w)
    amplitude[..., 8:16, 0:6] = 1.0
    phase = torch.zeros_like(amplitude)
    zs = torch.tensor([[z]])

    def run(**kw) -> torch.Tensor:
        cfg = DefocusConfig(defocus_um=[z], pad_mode="zero", **kw)
        return DefocusSeriesSimulator(cfg)(phase, amplitude, zs)

    reference = run(auto_pad=False, pad_fraction=4.0)
    wrapped = run(auto_pad=False, pad_fraction=0.0)
    auto = run(auto_pad=True, pad_fraction=0.0)
    assert diffraction_pad_px(z, 0.532, 1.0) == math.ceil(z * math.tan(math.asin(0.266)))
    err_wrapped = (wrapped - reference).norm() / reference.norm()
    err_auto = (auto - reference).norm() / reference.norm()
    assert err_wrapped > 0.3 and err_auto < 0.05, (err_wrapped, err_auto)


def test_reflect_padding_works_for_pads_longer_than_the_frame() -> None:
    x = torch.arange(4.0).view(1, 1, 1, 4)
    padded = pad_field(x, (0, 6), "reflect")
    assert padded.flatten().tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2, 3]


def test_plane_spacing_rules_make_the_distances() -> None:
    linear = DefocusConfig(planes={"kind": "linear", "count": 3, "min_um": 10, "max_um": 30})
    assert linear.defocus_um == [-30.0, -20.0, -10.0, 10.0, 20.0, 30.0]
    geo = PlaneSpacingConfig(kind="geometric", count=3, min_um=5, max_um=20, symmetric=False)
    assert geo.distances_um() == [5.0, 10.0, 20.0]
    with pytest.raises(ValueError, match="disagree"):
        DefocusConfig(defocus_um=[1.0], planes={"count": 1, "min_um": 2, "max_um": 2})


def test_misregistered_planes_are_shifted_copies() -> None:
    cfg = DefocusConfig(defocus_um=[10.0, 10.0], plane_shift_px=2.0)
    sim = DefocusSeriesSimulator(cfg)
    phase = 2.0 * power_law_field(1, 1, (32, 32), 3.0, torch.Generator().manual_seed(8))
    shift = torch.tensor([[[0.0, 0.0], [0.0, 2.0]]])
    out = sim(phase, torch.ones_like(phase), torch.tensor([[10.0, 10.0]]), shift)
    torch.testing.assert_close(out[0, 1, :, 6:-6], out[0, 0, :, 4:-8], atol=2e-3, rtol=0)
    inputs, _ = sim.sample(2, (24, 24), torch.Generator().manual_seed(9), ProceduralContent())
    assert (inputs[:, 0] - inputs[:, 1]).abs().max() > 1e-3  # same distance, shifted planes


def test_shipped_phase_configs_that_predict_amplitude_give_it_contrast() -> None:
    # phase-defocus.yaml once predicted amplitude with amplitude_contrast 0: a constant target
    from pathlib import Path

    from mcnn.config_io import load_config
    from mcnn.train.config import TrainConfig

    configs = sorted((Path(__file__).parents[3] / "configs").glob("phase-*.yaml"))
    assert len(configs) >= 4
    for path in configs:
        sim = load_config(TrainConfig, path).data.simulator
        assert isinstance(sim, DefocusConfig)
        if sim.predict_amplitude:
            assert sim.amplitude_contrast > 0, path.name


def _uncached_intensity(sim: DefocusSeriesSimulator, phase: torch.Tensor, amplitude: torch.Tensor,
                        z: torch.Tensor) -> torch.Tensor:
    """The simulator's forward rebuilt from the public, uncached functions."""
    from mcnn.physics.defocus import coherence_envelope, pad_field

    c = sim.config
    h, w = phase.shape[-2:]
    py, px = sim.pad_px((h, w), float(z.abs().max()))
    field = pad_field(torch.polar(amplitude, phase), (py, px), c.pad_mode)
    out = propagate(field, z, c.wavelength_um, c.pixel_size_um, medium_index=c.medium_index,
                    propagator=c.propagator, band_limit=c.band_limited,
                    numerical_aperture=c.numerical_aperture)
    intensity = out.real**2 + out.imag**2
    if c.illumination_na > 0 or c.bandwidth_um > 0:
        env = coherence_envelope(intensity.shape[-2:], z, c.wavelength_um, c.pixel_size_um,
                                 medium_index=c.medium_index, illumination_na=c.illumination_na,
                                 bandwidth_um=c.bandwidth_um)
        intensity = torch.fft.ifft2(torch.fft.fft2(intensity) * env).real.clamp_min(0.0)
    return intensity[..., py : py + h, px : px + w]


@pytest.mark.parametrize("options", [
    {},
    {"propagator": "fresnel", "numerical_aperture": 0.2},
    {"band_limited": True, "medium_index": 1.33, "illumination_na": 0.05, "bandwidth_um": 0.01},
    {"defocus_jitter_um": 1.0, "numerical_aperture": 0.3, "illumination_na": 0.05},
])
def test_cached_transfer_functions_give_the_uncached_intensities(options: dict) -> None:
    sim = DefocusSeriesSimulator(DefocusConfig(defocus_um=[-30.0, 0.0, 30.0], **options))
    g = torch.Generator().manual_seed(4)
    phase = 3.0 * torch.rand(2, 1, 24, 20, generator=g)
    amplitude = 0.5 + 0.5 * torch.rand(2, 1, 24, 20, generator=g)
    same = torch.tensor([[-30.0, 0.0, 30.0]]).expand(2, 3)  # one row for the batch: cached
    mixed = torch.tensor([[-30.0, 0.0, 30.0], [-31.5, 0.5, 29.0]])  # per-example distances
    for z in (same, mixed, same):  # the second `same` is served from the cache
        expected = _uncached_intensity(sim, phase, amplitude, z)
        assert torch.equal(sim(phase, amplitude, z), expected)  # bit for bit
    if sim.transfer.keep_distances:
        assert sim.transfer.hits >= 3  # the repeated distances were not rebuilt
    else:  # jittered distances never repeat: nothing per distance is stored
        assert not sim.transfer._entries


def test_cached_simulator_draws_the_same_examples_from_the_same_seed() -> None:
    cfg = DefocusConfig(defocus_um=[-20.0, 20.0], photons_per_px=500, amplitude_contrast=0.2)
    content = ProceduralContent()
    warm = DefocusSeriesSimulator(cfg)
    warm.sample(3, (32, 32), torch.Generator().manual_seed(1), content)  # fills the cache
    x1, y1 = warm.sample(2, (32, 32), torch.Generator().manual_seed(9), content)
    x2, y2 = DefocusSeriesSimulator(cfg).sample(2, (32, 32), torch.Generator().manual_seed(9),
                                               content)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_transfer_cache_stays_within_its_byte_budget() -> None:
    from mcnn.physics.defocus import TransferCache

    cache = TransferCache(DefocusConfig(), max_bytes=3 * 16 * 16 * 8)  # three 16x16 complex64
    z = torch.arange(10, dtype=torch.float32).view(2, 5)
    kernels = cache.kernels((16, 16), z, torch.device("cpu"))
    assert kernels.shape == (2, 5, 16, 16)
    assert len(cache._entries) == 3 and cache._bytes <= cache.max_bytes
    assert torch.equal(kernels[1, 4], propagate_kernel_for(9.0))


def test_kernel_equals_the_float64_polar_form() -> None:
    # cos/sin replaced torch.polar for speed; the complex64 kernel must not change.
    from mcnn.physics.defocus import _frequencies, angular_spectrum_kernel

    z = torch.tensor([[-100.0, 3.7, 250.0]])
    kernel = angular_spectrum_kernel((40, 24), z, 0.532, 0.8, medium_index=1.33)
    fy, fx = _frequencies((40, 24), 0.8)
    f2, k = fy**2 + fx**2, 1.33 / 0.532
    delta = -f2 / (k + torch.sqrt((k**2 - f2).clamp_min(0.0)))
    phase = 2 * math.pi * z.double().view(1, 3, 1, 1) * delta
    keep = (f2 < k**2).double().expand_as(phase).contiguous()
    assert torch.equal(kernel, torch.polar(keep, phase).to(torch.complex64))


def propagate_kernel_for(z_um: float) -> torch.Tensor:
    from mcnn.physics.defocus import angular_spectrum_kernel

    c = DefocusConfig()
    return angular_spectrum_kernel((16, 16), torch.tensor([z_um]), c.wavelength_um,
                                   c.pixel_size_um)[0]

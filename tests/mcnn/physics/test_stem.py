"""Low-dose HAADF STEM: Poisson statistics in target units, crystal structure, determinism."""

import pytest
import torch

from mcnn.physics import ProceduralContent, StemAdfSimulator, StemConfig
from mcnn.physics.stem import splat


def test_input_mean_matches_target_and_variance_is_target_over_dose() -> None:
    sim = StemAdfSimulator(StemConfig(dose_e_per_px_range=(4.0, 4.0)))
    inputs, targets = sim.sample(8, (64, 64), torch.Generator().manual_seed(0), ProceduralContent())
    torch.testing.assert_close(targets.mean(dim=(2, 3)), torch.ones(8, 1), atol=1e-5, rtol=0)
    assert abs(inputs.mean().item() - targets.mean().item()) < 0.02
    residual = inputs - targets
    ratio = (residual**2).sum() / (targets / 4.0).sum()  # Var[input] = target / dose per pixel
    assert abs(ratio.item() - 1) < 0.05
    assert torch.allclose(inputs * 4.0, torch.round(inputs * 4.0), atol=1e-4)  # whole electrons


def test_detector_noise_adds_its_variance_in_electrons() -> None:
    sim = StemAdfSimulator(StemConfig(detector_noise_e=2.0))
    clean = torch.ones(4, 1, 64, 64)
    dose = torch.full((4,), 5.0)
    noisy = sim(clean, dose, torch.Generator().manual_seed(0))
    expected = 1.0 / 5.0 + (2.0 / 5.0) ** 2
    assert abs(noisy.var().item() / expected - 1) < 0.05


def test_lower_dose_is_noisier() -> None:
    sim = StemAdfSimulator()
    clean = torch.ones(2, 1, 64, 64)
    noisy = sim(clean, torch.tensor([1.0, 10.0]), torch.Generator().manual_seed(0))
    assert noisy[0].var() > 5 * noisy[1].var()


def test_splat_conserves_mass_and_keeps_the_centroid() -> None:
    points = torch.tensor([[[3.25, 4.75], [10.5, 2.0]]])
    weights = torch.tensor([[2.0, 1.0]])
    grid = splat(points, weights, (16, 16))
    assert abs(grid.sum().item() - 3.0) < 1e-6
    single = splat(points[:, :1], weights[:, :1], (16, 16))[0, 0]
    ys, xs = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    centroid = ((single * xs).sum() / single.sum(), (single * ys).sum() / single.sum())
    torch.testing.assert_close(torch.stack(centroid), torch.tensor([3.25, 4.75]))
    outside = splat(torch.tensor([[[-5.0, 3.0]]]), torch.tensor([[1.0]]), (8, 8))
    assert outside.sum() == 0


def count_columns(images: torch.Tensor) -> int:
    """Local maxima (3x3) brighter than a quarter of each image's maximum."""
    pooled = torch.nn.functional.max_pool2d(images, 3, stride=1, padding=1)
    bright = images > 0.25 * images.amax(dim=(2, 3), keepdim=True)
    return int(((images == pooled) & bright).sum())


def test_lattice_spacing_sets_the_column_density() -> None:
    # Columns per area scale as 1 / spacing**2: halving the spacing gives ~4x the columns.
    fixed = {"atom_sigma_px_range": (1.0, 1.0), "background_max": 0.0, "max_grains": 1}
    fine = StemAdfSimulator(StemConfig(spacing_px_range=(5.0, 5.0), **fixed))
    coarse = StemAdfSimulator(StemConfig(spacing_px_range=(10.0, 10.0), **fixed))
    content = ProceduralContent()
    n_fine = count_columns(fine.clean(8, (64, 64), torch.Generator().manual_seed(0), content))
    n_coarse = count_columns(coarse.clean(8, (64, 64), torch.Generator().manual_seed(0), content))
    assert 2.5 < n_fine / n_coarse < 6.0


def test_columns_are_bright_peaks_on_a_dark_background() -> None:
    cfg = StemConfig(
        background_max=0.0,
        vacancy_fraction_max=0.0,
        scan_jitter_px=0.0,
        drift_px_max=0.0,
        spacing_px_range=(8.0, 8.0),
    )
    clean = StemAdfSimulator(cfg).clean(
        2, (64, 64), torch.Generator().manual_seed(1), ProceduralContent()
    )
    assert clean.max() > 4 * clean.median()


def test_same_generator_same_pair_and_different_seed_different_pair() -> None:
    sim = StemAdfSimulator()
    content = ProceduralContent()
    a = sim.sample(2, (32, 32), torch.Generator().manual_seed(9), content)
    b = sim.sample(2, (32, 32), torch.Generator().manual_seed(9), content)
    c = sim.sample(2, (32, 32), torch.Generator().manual_seed(10), content)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.allclose(a[1], c[1])


def test_config_names_a_reversed_range() -> None:
    with pytest.raises(ValueError, match=r"dose_e_per_px_range must satisfy 0 < low <= high"):
        StemConfig(dose_e_per_px_range=(10.0, 1.0))


# -- physical units, SNR and detector defects -------------------------------------------------------

from mcnn.physics.stem import dose_for_snr_db, expected_snr_db, snr_db  # noqa: E402


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_pm_ranges_convert_with_the_pixel_size():
    cfg = StemConfig(pixel_size_pm=20.0, spacing_pm_range=(200.0, 300.0),
                     atom_sigma_pm_range=(30.0, 40.0))
    assert cfg.px_ranges() == ((10.0, 15.0), (1.5, 2.0))
    with pytest.raises(ValueError, match="spacing_pm_range .* needs pixel_size_pm"):
        StemConfig(spacing_pm_range=(200.0, 300.0))
    with pytest.raises(ValueError, match="must be within 1.5-512 px"):
        StemConfig(pixel_size_pm=500.0, spacing_pm_range=(200.0, 300.0))


def test_pm_spacing_sets_the_lattice_period_in_px():
    fixed = dict(max_grains=1, vacancy_fraction_max=0.0, dopant_fraction_max=0.0,
                 background_max=0.0, scan_jitter_px=0.0, drift_px_max=0.0)
    a = StemAdfSimulator(StemConfig(pixel_size_pm=10.0, spacing_pm_range=(80.0, 80.0), **fixed))
    b = StemAdfSimulator(StemConfig(pixel_size_pm=20.0, spacing_pm_range=(80.0, 80.0), **fixed))
    na = a.lattice(1, (64, 64), _gen()).gt(0.05).sum()
    nb = b.lattice(1, (64, 64), _gen()).gt(0.05).sum()
    assert 2.5 < float(nb) / float(na) < 6  # twice the pixel size: ~4x the columns in the frame


def test_snr_is_defined_once_and_matches_poisson_at_the_dose():
    sim = StemAdfSimulator(StemConfig(dose_e_per_px_range=(0.05, 0.05)))
    content = ProceduralContent()
    clean = sim.clean(4, (64, 64), _gen(1), content)
    noisy = sim(clean, torch.full((4,), 0.05), _gen(2))
    measured, expected = snr_db(clean, noisy), expected_snr_db(clean, 0.05)
    assert torch.allclose(measured, expected, atol=0.4)
    assert -12 < float(measured.mean()) < -8  # the paper's low end (-10 dB) is ~0.05 e/px
    assert dose_for_snr_db(5.0, 1.5) == pytest.approx(2.108, rel=1e-3)


def test_counts_variance_is_mean_times_gain():
    sim = StemAdfSimulator()
    clean = torch.full((1, 1, 256, 256), 1.0)
    x = sim(clean, torch.tensor([4.0]), _gen(3))  # counts / dose
    gain = 3.0
    counts = gain * x * 4.0
    assert float(counts.var()) == pytest.approx(float(counts.mean()) * gain, rel=0.03)


def test_row_offsets_hot_and_dead_pixels():
    cfg = StemConfig(row_offset_e=2.0, hot_pixel_fraction=0.01, dead_pixel_fraction=0.01)
    sim = StemAdfSimulator(cfg)
    clean = torch.full((2, 1, 128, 128), 1.0)
    x = sim(clean, torch.tensor([5.0, 5.0]), _gen(4))
    hot = (x >= 5.0).float().mean()
    dead = (x == 0).float().mean()
    assert 0.005 < float(hot) < 0.02 and float(dead) > 0.005
    row_means = x[0, 0].median(dim=1).values
    assert float(row_means.std()) > 0.2  # row offsets of 2 e at dose 5: 0.4 in input units
    plain = StemAdfSimulator()(clean, torch.tensor([5.0, 5.0]), _gen(4))
    assert float(plain[0, 0].median(dim=1).values.std()) < 0.2

"""STEM frames for a demanding user: vacuum, true column positions, correlated detector noise,
natural-image targets; and that all of it is off (the same random stream) by default."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mcnn.physics import ProceduralContent, StemAdfSimulator, StemConfig
from mcnn.physics.stem import afterglow, crystal_masks, row_correlated_normal

SIZE = (64, 64)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _lag1(x: torch.Tensor, dim: int) -> float:
    """Lag-1 correlation of zero-mean ``x`` along ``dim``."""
    x = x - x.mean()
    a, b = x.narrow(dim, 0, x.shape[dim] - 1), x.narrow(dim, 1, x.shape[dim] - 1)
    return float((a * b).mean() / x.pow(2).mean())


def test_vacuum_comes_after_the_crystal_in_the_random_stream():
    # The same seed gives the same crystal with and without vacuum: inside the crystal (away from
    # the edge) the two frames differ only by the mean normalisation.
    content = ProceduralContent()
    plain = StemAdfSimulator(StemConfig()).clean_with_truth(3, SIZE, _gen(4), content)
    cut = StemAdfSimulator(StemConfig(vacuum_probability=1.0)).clean_with_truth(
        3, SIZE, _gen(4), content)
    for i in range(3):
        ratio = cut.clean[i, 0] / plain.clean[i, 0]
        inner = ~torch.nn.functional.max_pool2d(
            (ratio < 0.99 * ratio.max()).float()[None], 15, 1, 7)[0].bool()
        assert inner.float().mean() > 0.2
        r = ratio[inner]
        assert float(r.max() - r.min()) < 1e-4 * float(r.mean())
    assert cut.vacuum.any() and not plain.vacuum.any()


def test_clean_sample_and_truth_give_the_same_frames():
    sim = StemAdfSimulator(StemConfig(vacuum_probability=0.5, natural_image_fraction=0.3))
    content = ProceduralContent()
    truth = sim.clean_with_truth(4, SIZE, _gen(2), content)
    assert torch.equal(truth.clean, sim.clean(4, SIZE, _gen(2), content))
    assert torch.equal(truth.clean.float(), sim.sample(4, SIZE, _gen(2), content)[1])


def test_vacuum_share_of_frames_and_of_each_frame():
    cfg = StemConfig(vacuum_probability=0.5, vacuum_fraction_range=(0.2, 0.4))
    keep, vacuum = crystal_masks(cfg, 200, (32, 32), torch.full((200,), 1.0), _gen(1))
    has = (keep < 0.5).flatten(1).any(1)
    assert 0.4 < float(has.float().mean()) < 0.6
    share = (keep[has] < 0.5).flatten(1).float().mean(1)
    assert float(share.min()) > 0.19 and float(share.max()) < 0.41
    assert not vacuum[~has].any() and (keep[~has] == 1).all()
    # particles: a blob of crystal in vacuum; the corners are vacuum
    p = StemConfig(vacuum_probability=1.0, vacuum_particle_fraction=1.0,
                   vacuum_fraction_range=(0.7, 0.7))
    keep, _ = crystal_masks(p, 20, SIZE, torch.full((20,), 1.0), _gen(2))
    assert abs(float((keep < 0.5).float().mean()) - 0.7) < 0.01
    assert (keep[:, [0, 0, -1, -1], [0, -1, 0, -1]] < 0.5).all()


def test_vacuum_has_almost_no_signal():
    cfg = StemConfig(vacuum_probability=1.0, vacuum_fraction_range=(0.3, 0.3),
                     vacuum_edge_roughness_px=4.0)
    truth = StemAdfSimulator(cfg).clean_with_truth(4, SIZE, _gen(3), ProceduralContent())
    assert truth.vacuum.flatten(1).any(1).all()
    vac = truth.clean[:, 0][truth.vacuum]
    assert float(vac.max()) < 0.02  # the 1e-3 floor (x the normalisation) and a sigmoid tail
    torch.testing.assert_close(truth.clean.mean(dim=(2, 3)), torch.ones(4, 1))
    for pos, mask in zip(truth.positions, truth.vacuum, strict=True):
        r, c = pos.round().long().unbind(1)
        assert len(pos) > 5 and not mask[r, c].any()  # no true column in vacuum


def _subpixel_peaks(image: np.ndarray, rel: float) -> np.ndarray:
    """3x3 local maxima above ``rel`` x max, refined by a parabola along each axis."""
    from scipy.ndimage import maximum_filter

    peak = (image == maximum_filter(image, 3)) & (image > rel * image.max())
    peak[[0, -1], :] = peak[:, [0, -1]] = False
    out = []
    for r, c in zip(*np.nonzero(peak), strict=True):
        def vertex(a, b, d):
            den = a - 2 * b + d
            return 0.0 if den == 0 else 0.5 * (a - d) / den
        out.append((r + vertex(image[r - 1, c], image[r, c], image[r + 1, c]),
                    c + vertex(image[r, c - 1], image[r, c], image[r, c + 1])))
    return np.array(out).reshape(-1, 2)


def test_true_positions_lie_on_the_peaks_of_a_noiseless_narrow_frame():
    # Scan jitter and drift stay on: the positions are where the scan shows the columns.
    cfg = StemConfig(atom_sigma_px_range=(0.9, 0.9), background_max=0.0, probe_tail_fraction=0.0,
                     spacing_px_range=(8.0, 10.0), drift_px_max=3.0, scan_jitter_px=0.2)
    truth = StemAdfSimulator(cfg).clean_with_truth(4, SIZE, _gen(5), ProceduralContent(),
                                                   min_weight_fraction=0.5)
    from scipy.spatial import cKDTree

    total = 0
    for i in range(4):
        pos = truth.positions[i].numpy()
        d_self, _ = cKDTree(pos).query(pos, k=2)
        alone = (d_self[:, 1] > 4) & np.all((pos > 2) & (pos < np.array(SIZE) - 3), axis=1)
        peaks = _subpixel_peaks(truth.clean[i, 0].numpy(), 0.2)
        d, _ = cKDTree(peaks).query(pos[alone])
        assert np.all(d < 0.5), d.max()
        total += int(alone.sum())
    assert total > 40


def test_correlated_read_noise_has_the_requested_correlation_along_rows_only():
    z = row_correlated_normal(torch.zeros(4, 1, 128, 128), 1.5, _gen(6))
    assert abs(float(z.var()) - 1) < 0.05
    assert abs(_lag1(z, 3) - math.exp(-1 / (2 * 1.5**2))) < 0.03  # along rows: 0.80
    assert abs(_lag1(z, 2)) < 0.03  # across rows: none
    sim = StemAdfSimulator(StemConfig(detector_noise_e=3.0, noise_correlation_px=2.0))
    x = sim(torch.ones(4, 1, 128, 128), torch.full((4,), 10.0), _gen(7))
    # Poisson (var 10 e^2, white) + read noise (9 e^2, correlated 0.88): lag-1 = 9 * 0.88 / 19
    assert abs(_lag1(x, 3) - 9 * math.exp(-1 / 8) / 19) < 0.03
    assert abs(_lag1(x, 2)) < 0.03


def test_afterglow_keeps_the_mean_and_correlates_neighbours_by_its_fraction():
    counts = torch.poisson(torch.full((4, 1, 128, 256), 20.0), generator=_gen(8))
    y = afterglow(counts, 0.3)
    assert abs(float(y.mean() - counts.mean())) < 0.01
    assert abs(_lag1(y, 3) - 0.3) < 0.03 and abs(_lag1(y, 2)) < 0.03
    step = torch.zeros(1, 1, 1, 64)
    step[..., 3] = 1.0
    np.testing.assert_allclose(afterglow(step, 0.5)[0, 0, 0, 3:6].numpy(), [0.5, 0.25, 0.125],
                               rtol=1e-3)


def test_afterglow_range_draws_a_fraction_per_frame():
    sim = StemAdfSimulator(StemConfig(scan_afterglow_range=(0.0, 0.5), scan_jitter_px=0.0,
                                      drift_px_max=0.0))
    x = sim(torch.ones(8, 1, 96, 256), torch.full((8,), 20.0), _gen(13))
    lags = []
    for frame in x:
        d = frame[0] - frame[0].mean()
        lags.append(float((d[:, :-1] * d[:, 1:]).mean() / d.var()))
    assert all(-0.05 < lag < 0.55 for lag in lags)
    assert max(lags) - min(lags) > 0.15  # one value per frame, not one for the batch
    assert abs(float(x.mean()) - 1.0) < 0.01  # afterglow keeps the mean


class _FixedContent:
    def __init__(self) -> None:
        self.image = torch.rand(1, 1, *SIZE, generator=_gen(9))

    def sample(self, batch, size, generator, channels=1):
        torch.rand(1, generator=generator)  # a real source draws from the generator
        return self.image.expand(batch, channels, *size).clone()


def test_natural_image_targets_are_the_content_scaled_to_mean_one():
    content = _FixedContent()
    sim = StemAdfSimulator(StemConfig(natural_image_fraction=1.0, vacuum_probability=0.5))
    truth = sim.clean_with_truth(3, SIZE, _gen(10), content)
    expected = (content.image + 1e-3) / (content.image + 1e-3).mean()
    torch.testing.assert_close(truth.clean, expected.expand(3, 1, *SIZE))
    assert truth.natural.all() and not truth.vacuum.any()
    assert all(len(p) == 0 for p in truth.positions)
    x, y = sim.sample(3, SIZE, _gen(10), content)
    assert abs(float(x.mean() - y.mean())) < 0.05  # the same Poisson noise at the dose


@pytest.mark.parametrize("field, value", [("vacuum_fraction_range", (0.5, 0.2)),
                                          ("vacuum_fraction_range", (0.2, 1.0)),
                                          ("scan_afterglow", 1.0),
                                          ("scan_afterglow_range", (0.3, 0.1)),
                                          ("scan_afterglow_range", (0.0, 1.0))])
def test_bad_new_fields_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        StemConfig(**{field: value})


def test_new_options_draw_after_the_crystal_so_old_frames_stay_the_same():
    # Natural images and noise options draw after the crystal: frames that stay crystals equal
    # the default config's frames bit for bit, and noise options leave the targets unchanged.
    content = ProceduralContent()
    plain = StemAdfSimulator(StemConfig()).clean(6, SIZE, _gen(11), content)
    mixed = StemAdfSimulator(StemConfig(natural_image_fraction=0.5)).clean_with_truth(
        6, SIZE, _gen(11), content)
    assert 0 < int(mixed.natural.sum()) < 6
    assert torch.equal(mixed.clean[~mixed.natural], plain[~mixed.natural])
    noisy_cfg = StemConfig(detector_noise_e=0.5, noise_correlation_px=2.0, scan_afterglow=0.2)
    _, target = StemAdfSimulator(noisy_cfg).sample(2, SIZE, _gen(12), content)
    _, default_target = StemAdfSimulator(StemConfig()).sample(2, SIZE, _gen(12), content)
    assert torch.equal(target, default_target)

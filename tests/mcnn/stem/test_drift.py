"""Drift between frames of a series, and Noise2Noise adaptation on a drifting series."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mcnn.models import MCNN
from mcnn.physics import ProceduralContent, StemAdfSimulator, StemConfig
from mcnn.stem.adapt import adapt
from mcnn.stem.drift import frame_shift, series_shifts

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _field(size=192, seed=3) -> np.ndarray:
    sim = StemAdfSimulator(StemConfig(spacing_px_range=(10.0, 14.0),
                                      atom_sigma_px_range=(1.8, 2.4),
                                      scan_jitter_px=0.0, drift_px_max=0.0))
    g = torch.Generator().manual_seed(seed)
    return sim.clean(1, (size, size), g, ProceduralContent())[0, 0].numpy()


@pytest.mark.parametrize("dose", [0.2, 1.5])
@pytest.mark.parametrize("drift", [(0, 3), (1, -2), (-4, 5), (0, 0)])
def test_frame_shift_finds_the_drift_of_low_dose_lattice_frames(dose, drift):
    clean, rng = _field(), np.random.default_rng(0)
    dy, dx = drift
    a = rng.poisson(dose * clean[20:148, 30:158]) / dose
    b = rng.poisson(dose * clean[20 + dy:148 + dy, 30 + dx:158 + dx]) / dose
    assert frame_shift(a, b) == (-dy, -dx)  # b[y - dy, x - dx] shows what a shows at (y, x)


def test_series_shifts_and_bad_shapes():
    clean = _field(seed=4)
    frames = [clean[10 + 2 * k:138 + 2 * k, 10:138] for k in range(4)]
    assert series_shifts(frames) == [(-2, 0)] * 3
    with pytest.raises(ValueError, match="two equal 2-D frames"):
        frame_shift(frames[0], frames[0][:64])


def test_noise2noise_on_a_drifting_series_learns_to_denoise_only_when_aligned(
        trained_on_another_setting, held_out_mse):
    """A series drifting 3 px per frame: unaligned pairs teach the network to shift and blur."""
    base, _mse = trained_on_another_setting(), held_out_mse
    clean = _field(size=224, seed=5)
    sim = StemAdfSimulator(StemConfig(scan_jitter_px=0.0, drift_px_max=0.0))
    g = torch.Generator().manual_seed(7)
    dose = torch.full((1,), 1.5)
    frames = [sim(torch.from_numpy(clean[3 * k:3 * k + 128, 2 * k:2 * k + 128].copy())[None, None],
                  dose, g)[0, 0].numpy() for k in range(8)]
    held_y = torch.from_numpy(clean[None, None, 96:160, 96:160].copy())
    held_x = sim(held_y, dose, g)
    results = {}
    for align in (False, True):
        model = MCNN(base.config)
        model.load_state_dict(base.state_dict())
        adapt(model, frames, loss="noise2noise", steps=100, lr=1e-3, crop_px=32, batch=8,
              align=align)
        results[align] = _mse(model, held_x, held_y)
    before = _mse(base, held_x, held_y)
    assert results[False] > before  # unaligned pairs make it worse (measured: 2.8x the MSE)
    assert results[True] < 0.5 * before  # aligned: measured x0.23

"""Self-supervised adaptation: a model trained on one simulator setting, fine-tuned with the
blind-spot loss on unlabelled noisy frames of another setting, denoises that setting better."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mcnn.models import MCNN
from mcnn.physics import ProceduralContent, StemAdfSimulator, StemConfig
from mcnn.physics.stem import afterglow
from mcnn.stem.adapt import adapt, blind_spot_batch, row_noise_span

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_blind_spot_replaces_masked_pixels_by_a_neighbour():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 16 * 16, dtype=torch.float32).view(2, 1, 16, 16)
    masked, mask = blind_spot_batch(x, 0.2, g)
    assert 0.1 < float(mask.mean()) < 0.3
    changed = masked != x
    assert bool((changed <= mask.bool()).all())  # only masked pixels change
    diff = (masked - x)[mask.bool()].abs()
    assert set(diff.unique().tolist()) <= {1.0, 15.0, 16.0, 17.0}  # one of the 8 neighbours


def test_structured_blind_spot_hides_the_row_either_side():
    g = torch.Generator().manual_seed(1)
    x = torch.arange(2 * 32 * 32, dtype=torch.float32).view(2, 1, 32, 32)
    masked, mask = blind_spot_batch(x, 0.01, g, span_px=2)
    changed = masked != x
    for b, _, y, col in mask.nonzero().tolist():  # every blind spot and 2 px either side changed
        assert bool(changed[b, 0, y, max(col - 2, 0): col + 3].all())
    rows_away = ((masked - x)[changed].abs() / 32).round()
    assert set(rows_away.unique().tolist()) <= {1.0, 2.0}  # replaced from another row, never its own


def test_row_noise_span_is_measured_from_afterglow():
    rng = np.random.default_rng(0)
    counts = torch.from_numpy(rng.poisson(2.0, (1, 1, 128, 128)).astype(np.float32))
    assert row_noise_span([counts[0, 0].numpy()]) == 0
    assert row_noise_span([afterglow(counts, 0.5)[0, 0].numpy()]) >= 2


def _setting_b(afterglow_fraction: float = 0.0) -> StemAdfSimulator:
    """Setting B: low dose, coarse lattices, broad probe."""
    return StemAdfSimulator(StemConfig(dose_e_per_px_range=(1.5, 1.5),
                                       spacing_px_range=(10.0, 14.0),
                                       atom_sigma_px_range=(1.8, 2.4),
                                       scan_jitter_px=0.0, drift_px_max=0.0,
                                       scan_afterglow=afterglow_fraction))


@pytest.mark.parametrize("loss", ["blind_spot", "noise2noise"])
def test_adaptation_helps_on_a_different_simulator_setting(loss, trained_on_another_setting,
                                                           held_out_mse):
    model = trained_on_another_setting()
    _mse = held_out_mse
    content = ProceduralContent()
    other = _setting_b()
    gb = torch.Generator().manual_seed(100)
    if loss == "noise2noise":  # a series: one field counted 8 times
        clean = other.clean(1, (128, 128), gb, content)
        frames = [other(clean, torch.full((1,), 1.5), gb)[0, 0].numpy() for _ in range(8)]
    else:
        unlabelled, _ = other.sample(8, (64, 64), gb, content)
        frames = [f[0].numpy() for f in unlabelled]
    held_x, held_y = other.sample(8, (64, 64), gb, content)
    before = _mse(model, held_x, held_y)
    adapt(model, frames, loss=loss, steps=100, lr=1e-3, crop_px=32, batch=8, mask_fraction=0.05)
    after = _mse(model, held_x, held_y)
    assert after < 0.8 * before  # > 1 dB better on frames never seen, without clean targets


def test_structured_blind_spot_adapts_where_row_correlated_noise_defeats_the_plain_one(
        trained_on_another_setting, held_out_mse):
    """Setting B with afterglow 0.5 along the rows (real HAADF frames show lag-1 correlations of
    0.3-0.5): single-pixel blind spots let the network read each spot's noise off its row
    neighbours, so adapting barely helps; hiding the measured span either side does."""
    base, _mse = trained_on_another_setting(), held_out_mse
    content = ProceduralContent()
    other = _setting_b(afterglow_fraction=0.5)
    gb = torch.Generator().manual_seed(100)
    unlabelled, _ = other.sample(8, (64, 64), gb, content)
    frames = [f[0].numpy() for f in unlabelled]
    held_x, held_y = other.sample(8, (64, 64), gb, content)
    before = _mse(base, held_x, held_y)
    results = {}
    for span in (0, None):  # None: measured on the frames
        model = MCNN(base.config)
        model.load_state_dict(base.state_dict())
        adapt(model, frames, loss="blind_spot", steps=100, lr=1e-3, crop_px=32, batch=8,
              mask_fraction=0.05, span_px=span)
        results[span] = _mse(model, held_x, held_y)
    assert row_noise_span(frames) >= 1
    assert results[None] < 0.9 * before
    assert results[None] < 0.92 * results[0]

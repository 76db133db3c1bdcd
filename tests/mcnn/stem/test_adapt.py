"""Self-supervised adaptation: a model trained on one simulator setting, fine-tuned with the
blind-spot loss on unlabelled noisy frames of another setting, denoises that setting better."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mcnn.models import MCNN, ModelConfig
from mcnn.physics import ProceduralContent, StemAdfSimulator, StemConfig
from mcnn.stem.adapt import adapt, blind_spot_batch

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


def _mse(model, x, y):
    with torch.no_grad():
        return float(F.mse_loss(model(x), y))


@pytest.mark.parametrize("loss", ["blind_spot", "noise2noise"])
def test_adaptation_helps_on_a_different_simulator_setting(loss):
    torch.manual_seed(0)
    model = MCNN(ModelConfig(depth=2, base_width=8, max_width=16, branches=1))
    content = ProceduralContent()
    trained = StemAdfSimulator(StemConfig(dose_e_per_px_range=(20.0, 40.0),
                                          spacing_px_range=(5.0, 7.0),
                                          atom_sigma_px_range=(0.8, 1.2)))
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):  # supervised on setting A: high dose, small fine lattices
        x, y = trained.sample(8, (32, 32), g, content)
        loss_value = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss_value.backward()
        opt.step()
    model.eval()
    # Setting B: low dose, coarse lattices, broad probe; no clean targets are used to adapt.
    other = StemAdfSimulator(StemConfig(dose_e_per_px_range=(1.5, 1.5),
                                        spacing_px_range=(10.0, 14.0),
                                        atom_sigma_px_range=(1.8, 2.4),
                                        scan_jitter_px=0.0, drift_px_max=0.0))
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

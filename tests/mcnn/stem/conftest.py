"""Shared by the STEM adaptation tests: a tiny denoiser trained on another simulator setting."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from mcnn.models import MCNN, ModelConfig
from mcnn.physics import ProceduralContent, StemAdfSimulator, StemConfig


@pytest.fixture(scope="session")
def _another_setting_weights() -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = MCNN(ModelConfig(depth=2, base_width=8, max_width=16, branches=1))
    trained = StemAdfSimulator(StemConfig(dose_e_per_px_range=(20.0, 40.0),
                                          spacing_px_range=(5.0, 7.0),
                                          atom_sigma_px_range=(0.8, 1.2)))
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(150):
            x, y = trained.sample(8, (32, 32), g, ProceduralContent())
            loss_value = F.mse_loss(model(x), y)
            opt.zero_grad()
            loss_value.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.config, {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture
def trained_on_another_setting(_another_setting_weights) -> Callable[[], MCNN]:
    """A fresh copy of a tiny model trained with clean targets on setting A (high dose, small
    fine lattices), in eval mode."""
    config, state = _another_setting_weights

    def make() -> MCNN:
        model = MCNN(config)
        model.load_state_dict(state)
        return model.eval()

    return make


@pytest.fixture
def held_out_mse() -> Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], float]:
    def mse(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        with torch.no_grad():
            return float(F.mse_loss(model(x), y))

    return mse

"""A tiny MCNN trained for a few seconds, so tiling is tested on weights that do something."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mcnn.models import MCNN, ModelConfig


def smooth_images(n: int, channels: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Random images low-passed by repeated 5x5 blurs: ``(n, channels, size, size)`` in ~[0, 1]."""
    x = torch.rand(n, channels, size + 16, size + 16, generator=generator)
    for _ in range(3):
        x = F.avg_pool2d(x, 5, stride=1)
    x = x[..., :size, :size]
    return (x - x.mean()) / (x.std() + 1e-6) * 0.2 + 0.5


def train_tiny(config: ModelConfig, steps: int = 30, seed: int = 0) -> MCNN:
    """Denoising (and, with output_scale > 1, upsampling) of smooth images; plain torch, ~1 s."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: threads only contend (25x slower on a busy box)
    try:
        return _train(config, steps, seed)
    finally:
        torch.set_num_threads(threads)


def _train(config: ModelConfig, steps: int, seed: int) -> MCNN:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = MCNN(config)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    s = config.output_scale
    for _ in range(steps):
        clean = smooth_images(4, config.in_channels, 32 * s, g)
        noisy = F.avg_pool2d(clean, s) if s > 1 else clean
        noisy = noisy + 0.05 * torch.randn(noisy.shape, generator=g)
        target = clean.mean(1, keepdim=True).repeat(1, config.out_channels, 1, 1)
        loss = F.l1_loss(model(noisy), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def tiny_model() -> MCNN:
    return train_tiny(ModelConfig(depth=3, base_width=8, max_width=32, branches=1))


@pytest.fixture(scope="session")
def tiny_model_x2_multichannel() -> MCNN:
    cfg = ModelConfig(depth=2, base_width=8, max_width=16, branches=1, in_channels=2,
                      out_channels=3, output_scale=2)
    return train_tiny(cfg)


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread: None) -> None:
    """Every inference test runs torch on one thread (``one_torch_thread``)."""


@pytest.fixture(scope="session")
def smooth():
    """``smooth_images`` for tests (conftest modules are not imported by tests directly)."""
    return smooth_images

"""Laplacian tutorial: the 9-point stencil, its replicate padding and the noise level."""

import torch

from mcnn.physics import LaplacianConfig, LaplacianPhaseSimulator, ProceduralContent
from mcnn.physics.laplacian import laplacian_9pt


def test_stencil_is_four_times_the_laplacian_of_a_quadratic() -> None:
    y, x = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    field = (0.5 * x**2 + 1.5 * y**2).view(1, 1, 16, 16)  # laplacian = 1 + 3 = 4
    out = laplacian_9pt(field)
    torch.testing.assert_close(out[..., 1:-1, 1:-1], torch.full((1, 1, 14, 14), 16.0))


def test_replicate_padding_gives_zero_for_constants_and_a_step_at_ramp_borders() -> None:
    assert laplacian_9pt(torch.full((1, 1, 8, 8), 3.0)).abs().max() == 0
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 8, 8)
    out = laplacian_9pt(ramp)
    assert out[..., 1:-1].abs().max() == 0
    torch.testing.assert_close(out[..., 0], torch.full((1, 1, 8), 4.0))  # 4 * (f1 - f0)
    torch.testing.assert_close(out[..., -1], torch.full((1, 1, 8), -4.0))


def test_sample_is_noisy_laplacian_of_scaled_content() -> None:
    sim = LaplacianPhaseSimulator(LaplacianConfig(phase_scale=2.0, noise_std=0.05))
    content = ProceduralContent()
    inputs, targets = sim.sample(4, (64, 64), torch.Generator().manual_seed(0), content)
    phase = 2.0 * content.sample(4, (64, 64), torch.Generator().manual_seed(0))
    torch.testing.assert_close(targets, phase)
    noise = inputs - laplacian_9pt(targets)
    assert abs(noise.std().item() - 0.05) < 0.003
    assert abs(noise.mean().item()) < 0.003
    assert (sim.in_channels, sim.out_channels, sim.scale) == (1, 1, 1)

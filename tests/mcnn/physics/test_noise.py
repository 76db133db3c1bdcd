"""The shared noise model: statistics at a dose, read noise, gain/offset, clipping, and randomness
drawn only from the generator it is given."""

import pytest
import torch

from mcnn.physics.noise import clip, gain_offset, poisson_counts, read_noise, shot_noise

N = 200_000


def signal(value: float, batch: int = 1) -> torch.Tensor:
    return torch.full((batch, 1, N // (100 * batch), 100), value)


def test_poisson_counts_have_mean_and_variance_dose_times_signal() -> None:
    counts = poisson_counts(signal(0.4), 25.0, torch.Generator().manual_seed(0))
    assert torch.equal(counts, counts.round())  # whole quanta
    assert abs(counts.mean().item() / 10.0 - 1) < 0.01  # 25 * 0.4 = 10
    assert abs(counts.var().item() / 10.0 - 1) < 0.02


def test_shot_noise_keeps_the_mean_with_variance_signal_over_dose() -> None:
    for gaussian in (False, True):
        x = shot_noise(signal(0.6), 50.0, torch.Generator().manual_seed(1), gaussian=gaussian)
        assert abs(x.mean().item() / 0.6 - 1) < 0.005
        assert abs(x.var().item() / (0.6 / 50) - 1) < 0.02


def test_a_per_example_dose_sets_each_example_variance() -> None:
    x = shot_noise(signal(1.0, batch=2), torch.tensor([4.0, 100.0]), torch.Generator())
    variances = x.flatten(1).var(dim=1)
    torch.testing.assert_close(variances, torch.tensor([1 / 4, 1 / 100]), rtol=0.05, atol=0)


def test_negative_signal_counts_nothing() -> None:
    counts = poisson_counts(torch.full((1, 1, 8, 8), -0.5), 10.0, torch.Generator())
    assert counts.abs().max() == 0


def test_read_noise_std_and_zero_std_draws_nothing() -> None:
    g = torch.Generator().manual_seed(2)
    x = read_noise(signal(0.3), 0.05, g)
    assert abs(x.mean().item() - 0.3) < 1e-3 and abs(x.std().item() / 0.05 - 1) < 0.01
    state = g.get_state()
    y = signal(0.3)
    assert read_noise(y, 0.0, g) is y and torch.equal(g.get_state(), state)


def test_noise_comes_only_from_the_given_generator() -> None:
    x = signal(0.5)
    torch.manual_seed(0)
    a = read_noise(shot_noise(x, 30.0, torch.Generator().manual_seed(7)), 0.1,
                   torch.Generator().manual_seed(8))
    torch.manual_seed(123)  # the global random state must not matter
    b = read_noise(shot_noise(x, 30.0, torch.Generator().manual_seed(7)), 0.1,
                   torch.Generator().manual_seed(8))
    assert torch.equal(a, b)


def test_gain_offset_per_example_and_clip() -> None:
    x = torch.ones(2, 3, 4, 4)
    y = gain_offset(x, torch.tensor([2.0, 0.5]), torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1))
    assert y[0, 2, 0, 0].item() == pytest.approx(2.3) and y[1, 0, 0, 0].item() == pytest.approx(0.6)
    assert torch.equal(gain_offset(x, 3.0), 3 * x)
    torch.testing.assert_close(clip(torch.tensor([-1.0, 0.5, 2.0])), torch.tensor([0.0, 0.5, 1.0]))

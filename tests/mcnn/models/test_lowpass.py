"""The fixed low-pass front: true Gaussians (per the formula), boxes, and the channels it adds."""

import math

import torch

from mcnn.models import MCNN, LowPassConfig, LowPassFront, ModelConfig
from mcnn.models.lowpass import box_kernel, gaussian_kernel


def test_gaussian_kernel_follows_the_formula_and_is_at_least_15_wide():
    sigma = 3.0
    k = gaussian_kernel(sigma, 15)
    assert k.shape == (19, 19)  # 2*ceil(3 sigma)+1
    c = 9
    for dy, dx in [(0, 0), (1, 0), (2, 3), (5, 5), (9, 0)]:
        expected = math.exp(-(dx * dx + dy * dy) / (2 * sigma**2))
        assert abs(k[c + dy, c + dx] / k[c, c] - expected) < 1e-5
    assert abs(float(k.sum()) - 1) < 1e-5
    assert gaussian_kernel(1.0, 15).shape == (15, 15)
    # the second moment of a sampled Gaussian is sigma^2 (up to truncation at 3 sigma)
    r = torch.arange(19) - 9.0
    var = float((k.sum(0) * r**2).sum())
    assert abs(var - sigma**2) / sigma**2 < 0.03


def test_box_filter_of_constant_is_constant_and_channels_add_up():
    assert torch.allclose(box_kernel(5).sum(), torch.tensor(1.0))
    front = LowPassFront(2, LowPassConfig())
    x = torch.full((1, 2, 20, 20), 0.7)
    y = front(x)
    assert y.shape == (1, 2 + 2 * 4, 20, 20) and front.out_channels == 10
    assert torch.allclose(y, torch.full_like(y, 0.7), atol=1e-6)
    assert not any(p.requires_grad for p in front.parameters())


def test_lowpass_reduces_noise_variance_as_expected_for_a_box():
    torch.manual_seed(0)
    x = torch.randn(1, 1, 128, 128)
    y = LowPassFront(1, LowPassConfig(mode="replace"))(x)
    assert y.shape[1] == 4
    var_box5 = float(y[0, 0, 10:-10, 10:-10].var())
    assert abs(var_box5 - 1 / 25) < 0.01


def test_lowpass_in_model_and_trainable_option():
    m = MCNN(ModelConfig(depth=2, base_width=8, branches=1, lowpass=LowPassConfig(trainable=True)))
    assert m.lowpass.weight.requires_grad
    assert m(torch.randn(1, 1, 16, 16)).shape == (1, 1, 16, 16)


def test_fixed_filters_run_separably_and_match_the_2d_bank():
    """The row-then-column path gives the 2-D convolution's result (float32 rounding), on odd
    sizes and several channels, and adds nothing to the state dict (old checkpoints load)."""
    torch.manual_seed(0)
    for mode in ("concat", "replace"):
        front = LowPassFront(3, LowPassConfig(mode=mode))
        assert front.separable and set(front.state_dict()) == {"weight"}
        x = torch.rand(2, 3, 37, 23)
        fast = front(x)
        front.separable = False
        slow = front(x)
        assert fast.shape == slow.shape
        assert float((fast - slow).abs().max()) < 1e-6
    assert not LowPassFront(1, LowPassConfig(trainable=True)).separable


def test_fixed_front_copies_the_input_exactly_and_keeps_channels_last():
    """The input copy of concat mode is an impulse filter of the separable passes: bit-exact, and
    the front's output stays channels_last (a torch.cat with the one-channel frame came out NCHW
    and cost the next layers a copy)."""
    torch.manual_seed(0)
    front = LowPassFront(1, LowPassConfig())
    x = torch.rand(2, 1, 40, 33)
    y = front(x)
    assert torch.equal(y[:, :1], x) and y.is_contiguous()
    front = front.to(memory_format=torch.channels_last)  # as MCNN.to(memory_format=...) does
    y = front(x.contiguous(memory_format=torch.channels_last))
    assert torch.equal(y[:, :1], x)
    assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
    front3 = LowPassFront(3, LowPassConfig())
    x3 = torch.rand(1, 3, 21, 19)
    assert torch.equal(front3(x3)[:, :3], x3)

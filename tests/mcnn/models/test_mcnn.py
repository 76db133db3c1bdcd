"""MCNN shapes, sizes, parameter counts and the U-Net baseline it is compared against."""

import pytest
import torch

from mcnn.models import MCNN, ModelConfig, count_parameters


def tiny(**kw) -> ModelConfig:
    base = dict(depth=3, base_width=8, max_width=32, branches=2)
    base.update(kw)
    return ModelConfig(**base)


@pytest.mark.parametrize("cell", ["conv", "bottleneck"])
@pytest.mark.parametrize("skip", ["concat", "add"])
def test_branch_outputs_are_halvings_of_the_output(cell, skip):
    m = MCNN(tiny(cell=cell, skip=skip, groups=4))
    outs = m.forward_multiscale(torch.randn(2, 1, 32, 48))
    assert [tuple(o.shape[-2:]) for o in outs] == [(32, 48), (16, 24), (8, 12)]
    assert all(o.shape[:2] == (2, 1) for o in outs)


@pytest.mark.parametrize("size", [(37, 53), (8, 8), (1, 100), (65, 64)])
def test_any_input_size_is_padded_and_cropped_back_not_resized(size):
    m = MCNN(tiny()).eval()
    x = torch.randn(1, 1, *size)
    assert m(x).shape[-2:] == size
    # the visible part of a padded input is what the network computes: pad explicitly and compare
    h, w = size
    mult = m.config.size_multiple
    if h >= mult and w >= mult and h % mult == 0 and w % mult == 0:
        assert torch.equal(m(x), m._run(x, False)[0])


def test_forward_equals_full_resolution_output_of_multiscale():
    torch.manual_seed(0)
    m = MCNN(tiny()).eval()
    x = torch.randn(1, 1, 32, 32)
    assert torch.allclose(m(x), m.forward_multiscale(x)[0])


def test_output_scale_and_channel_counts():
    m = MCNN(tiny(in_channels=3, out_channels=2, output_scale=2, branches=3))
    outs = m.forward_multiscale(torch.randn(1, 3, 36, 64))
    assert [tuple(o.shape[1:]) for o in outs] == [(2, 72, 128), (2, 36, 64), (2, 18, 32), (2, 9, 16)]


def test_branch_feedback_uses_coarse_outputs_in_forward():
    torch.manual_seed(0)
    m = MCNN(tiny(branch_feedback=True)).eval()
    x = torch.randn(1, 1, 32, 32)
    ref = m(x)
    with torch.no_grad():
        m.stages[0].head.bias += 1.0  # changing a coarse head must change the full output
    assert not torch.allclose(m(x), ref)


def test_plain_unet_baseline_has_identical_layers_minus_heads():
    with_b = MCNN(tiny(branches=2))
    plain = MCNN(tiny(branches=0))
    head_params = sum(p.numel() for s in with_b.stages for p in s.head.parameters())
    assert not with_b.has_bottleneck_head
    assert count_parameters(with_b) - count_parameters(plain) == head_params
    assert len(plain.forward_multiscale(torch.randn(1, 1, 16, 16))) == 1


def test_paper_denoiser_size_is_near_40_to_50_million_parameters():
    cfg = ModelConfig(depth=7, base_width=64, max_width=512, skip="add", branches=7)
    n = count_parameters(MCNN(cfg))
    assert 38e6 <= n <= 50e6, n


def test_bottleneck_variant_is_deep_but_lighter_than_the_conv_network():
    conv = ModelConfig(depth=6, base_width=64, max_width=1024, skip="concat", branches=3)
    bott = ModelConfig(depth=6, base_width=64, max_width=1024, skip="concat", branches=3,
                       cell="bottleneck", blocks_per_level=3)
    n_conv, n_bott = count_parameters(MCNN(conv)), count_parameters(MCNN(bott))
    assert n_bott < 0.5 * n_conv
    depth_b = sum(isinstance(m, torch.nn.Conv2d) for m in MCNN(bott).modules())
    depth_c = sum(isinstance(m, torch.nn.Conv2d) for m in MCNN(conv).modules())
    assert depth_b > 5 * depth_c


@pytest.mark.parametrize("norm", ["batch", "group", "instance"])
def test_norm_options_train(norm):
    m = MCNN(tiny(norm=norm))
    out = m.forward_multiscale(torch.randn(2, 1, 16, 16))
    sum(o.mean() for o in out).backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


@pytest.mark.parametrize(
    "kw, fragment",
    [
        (dict(branches=5, depth=3), "branches=5"),
        (dict(output_scale=3), "output_scale"),
        (dict(base_width=64, max_width=32), "max_width=32"),
    ],
)
def test_invalid_configs_name_the_fields(kw, fragment):
    with pytest.raises(ValueError, match=fragment):
        tiny(**kw)


@pytest.mark.parametrize("depth, scale", [(1, 1), (3, 1), (3, 2), (2, 4), (7, 1)])
def test_every_branch_count_the_config_allows_is_built(depth, scale):
    """The config's rule and the network agree: branches == depth + log2(scale) puts the
    coarsest head on the bottleneck (the shipped STEM config failed with '7 outputs but 8
    weights')."""
    levels = depth + scale.bit_length() - 1
    m = MCNN(ModelConfig(depth=depth, base_width=4, max_width=16, branches=levels,
                         output_scale=scale, skip="add"))
    outs = m.forward_multiscale(torch.randn(1, 1, 40, 24))
    assert len(outs) == levels + 1
    assert [tuple(o.shape[-2:]) for o in outs] == [
        (-(-40 * scale // 2**k), -(-24 * scale // 2**k)) for k in range(levels + 1)]
    with pytest.raises(ValueError, match=f"branches={levels + 1}"):
        ModelConfig(depth=depth, branches=levels + 1, output_scale=scale)


def test_bottleneck_head_feeds_back_when_asked():
    torch.manual_seed(0)
    m = MCNN(tiny(branches=3, branch_feedback=True)).eval()
    x = torch.randn(1, 1, 32, 32)
    ref = m(x)
    with torch.no_grad():
        m.bottleneck_head.bias += 1.0
    assert not torch.allclose(m(x), ref)


@pytest.mark.parametrize("skip", ["add", "concat"])
def test_a_seed_gives_the_same_trunk_whatever_the_branch_count(skip):
    """Heads come from their own generator after the trunk: the U-Net and MCNN of a seed start
    from identical shared weights (a fair convergence comparison)."""
    states = []
    for branches in (0, 1, 3):
        torch.manual_seed(7)
        states.append(MCNN(tiny(branches=branches, skip=skip)).state_dict())
    shared = states[0].keys()
    for other in states[1:]:
        assert all(torch.equal(states[0][k], other[k]) for k in shared)
    assert torch.randn(1).item() != 0  # the global RNG is still usable afterwards


@pytest.mark.parametrize("first_conv", ["full", "stride2"])
@pytest.mark.parametrize("skip", ["add", "concat"])
def test_outputs_under_bf16_autocast_are_fp32_and_match_to_1e_3(skip, first_conv):
    """Heads and the last decoder stage run in fp32: a ~3 rad phase is not quantised to bf16's
    0.0156 rad steps."""
    torch.manual_seed(0)
    m = MCNN(tiny(depth=4, base_width=16, max_width=64, branches=3, skip=skip,
                  first_conv=first_conv)).eval()
    with torch.no_grad():
        m.head.bias.fill_(3.0)
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        ref = m(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = m(x)
            coarse = m.forward_multiscale(x)
    assert got.dtype == torch.float32 and all(c.dtype == torch.float32 for c in coarse)
    assert float((got - ref).abs().max()) <= 1e-3 * float(ref.abs().max())
    assert got.unique().numel() > 0.9 * got.numel()  # not a handful of bf16 levels

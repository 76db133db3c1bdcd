"""``first_conv``: the default full-resolution stem is unchanged; ``stride2`` (the paper's and
pix2pix's layout) starts with a stride-2 cell and keeps every guarantee of the network."""

import hashlib

import pytest
import torch

from mcnn.models import MCNN, LowPassConfig, ModelConfig, count_parameters


def tiny(**kw) -> ModelConfig:
    base = dict(depth=3, base_width=8, max_width=32, branches=2, first_conv="stride2")
    base.update(kw)
    return ModelConfig(**base)


def test_default_network_is_bit_for_bit_the_one_before_the_option():
    """Same modules, same construction order: a seed gives the weights it gave before (the hash
    was taken from the code before ``first_conv`` existed)."""
    torch.manual_seed(3)
    m = MCNN(ModelConfig(depth=3, base_width=8, max_width=32, branches=2,
                         lowpass=LowPassConfig(), skip="concat"))
    h = hashlib.sha256()
    for k, v in m.state_dict().items():
        h.update(k.encode())
        h.update(v.numpy().tobytes())
    assert h.hexdigest()[:16] == "9ea888224bef786a"
    assert ModelConfig().first_conv == "full"


@pytest.mark.parametrize("skip", ["concat", "add"])
@pytest.mark.parametrize("cell", ["conv", "bottleneck"])
def test_stride2_has_no_full_resolution_stem_and_reads_the_input_directly(skip, cell):
    cfg = tiny(skip=skip, cell=cell, groups=4, lowpass=LowPassConfig())
    m = MCNN(cfg)
    assert isinstance(m.stem, torch.nn.Identity)
    first = next(mod for mod in m.encoder[0].modules() if isinstance(mod, torch.nn.Conv2d))
    assert first.in_channels == 5 and first.stride == (2, 2)  # input + 4 low-pass copies
    # the last stage concatenates the 5-channel input (cheap; an add would need a projection)
    assert m.head.in_channels == 8 + 5
    assert m.stages[-1].skip_level == 0 and m.stages[-1].concat
    assert m.stages[0].concat == (skip == "concat")


@pytest.mark.parametrize("skip", ["concat", "add"])
@pytest.mark.parametrize("size", [(37, 53), (1, 9), (65, 64)])
def test_stride2_odd_sizes_are_padded_and_cropped_back(skip, size):
    m = MCNN(tiny(skip=skip)).eval()
    outs = m.forward_multiscale(torch.randn(2, 1, *size))
    h, w = size
    assert [tuple(o.shape) for o in outs] == [
        (2, 1, -(-h // 2**k), -(-w // 2**k)) for k in range(3)]


@pytest.mark.parametrize("skip", ["concat", "add"])
def test_stride2_output_scale_2_and_every_branch_count(skip):
    m = MCNN(tiny(in_channels=3, out_channels=2, output_scale=2, branches=4, skip=skip))
    outs = m.forward_multiscale(torch.randn(1, 3, 36, 50))
    assert [tuple(o.shape[1:]) for o in outs] == [
        (2, 72, 100), (2, 36, 50), (2, 18, 25), (2, 9, 13), (2, 5, 7)]
    assert m.has_bottleneck_head  # branches = depth + 1: the coarsest head on the bottleneck


def test_stride2_saves_the_stem_and_its_full_resolution_work():
    """Parameter change of the paper denoiser: the 3x3 stem (5 -> 64 ch) goes, the first cell
    reads 5 channels instead of 64, the head reads the 5 input channels more: 39.09M -> 38.97M."""
    kw = dict(depth=7, base_width=64, max_width=512, skip="add", branches=7,
              lowpass=LowPassConfig())
    full = count_parameters(MCNN(ModelConfig(**kw)))
    s2 = count_parameters(MCNN(ModelConfig(**kw, first_conv="stride2")))
    stem = 5 * 64 * 9 + 64
    first_cell_saved = (64 - 5) * 128 * 16
    head_added = 5 * 9
    assert full - s2 == stem + first_cell_saved - head_added
    assert (full, s2) == (39_094_920, 38_971_189)


@pytest.mark.parametrize("skip", ["add", "concat"])
def test_stride2_a_seed_gives_the_same_trunk_whatever_the_branch_count(skip):
    states = []
    for branches in (0, 1, 3):
        torch.manual_seed(7)
        states.append(MCNN(tiny(branches=branches, skip=skip)).state_dict())
    for other in states[1:]:
        assert all(torch.equal(states[0][k], other[k]) for k in states[0])


def test_stride2_scripts_and_exports_for_any_size(tmp_path):
    from mcnn.infer.export import check_onnx, check_torchscript, export_onnx, export_torchscript

    torch.manual_seed(0)
    m = MCNN(tiny(output_scale=2, in_channels=2, out_channels=3, lowpass=LowPassConfig())).eval()
    assert export_torchscript(m, tmp_path / "m.pt") == "script"
    assert check_torchscript(m, tmp_path / "m.pt", [(37, 53), (64, 16)]) == 0.0
    done = export_onnx(m, tmp_path / "m.onnx", height=32, width=32, dynamic=True)
    assert check_onnx(m, done.path, [(37, 53), (8, 100)]) < 1e-4


def test_one_channel_skip_concat_keeps_channels_last_and_values():
    """``cat_channels``: the same values as ``torch.cat``; channels_last out when the features are
    channels_last, whether the one-channel skip is a plain, a sliced or a channels_last tensor."""
    from mcnn.models.mcnn import cat_channels

    torch.manual_seed(0)
    y = torch.randn(2, 6, 16, 16).contiguous(memory_format=torch.channels_last)
    skips = [torch.randn(2, 1, 16, 16), torch.randn(3, 1, 16, 16)[1:],
             torch.randn(2, 1, 20, 20)[:, :, 2:18, 2:18], torch.randn(2, 2, 16, 16)]
    for s in skips:
        out = cat_channels(y, s)
        assert torch.equal(out, torch.cat([y, s], dim=1))
        if s.shape[1] == 1 and s.is_contiguous():
            assert out.is_contiguous(memory_format=torch.channels_last)
    plain = torch.randn(2, 6, 16, 16)
    assert cat_channels(plain, skips[0]).is_contiguous()


@pytest.mark.parametrize("lowpass", [None, LowPassConfig()])
def test_channels_last_model_gives_the_nchw_output(lowpass):
    torch.manual_seed(1)
    m = MCNN(tiny(skip="concat", lowpass=lowpass)).eval()
    x = torch.rand(2, 1, 24, 20)
    with torch.no_grad():
        ref = m(x)
        m = m.to(memory_format=torch.channels_last)
        out = m(x.contiguous(memory_format=torch.channels_last))
    assert float((out - ref).abs().max()) < 1e-5

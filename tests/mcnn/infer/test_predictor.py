"""Predictor: layouts in = layouts out, streams keep order, tiled output equals untiled output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mcnn.infer import Predictor
from mcnn.infer.memory import estimate_inference_bytes
from mcnn.models import MCNN, ModelConfig
from mcnn.weights import CheckpointError, save_model


@pytest.fixture
def frame(smooth):
    """``frame(channels, h, w)``: one smooth ``(1, C, h, w)`` test image."""

    def make(channels: int, h: int, w: int, seed: int = 1) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return smooth(1, channels, max(h, w), g)[..., :h, :w]

    return make


def test_tiled_matches_untiled_on_an_odd_1000x1013_frame(tiny_model, frame):
    x = frame(1, 1000, 1013)
    full = Predictor(tiny_model, device="cpu").predict(x)
    tiled = Predictor(tiny_model, device="cpu", tile_size=256, overlap=64, tile_batch=4).predict(x)
    assert full.shape == tiled.shape == (1, 1, 1000, 1013)
    diff = (tiled - full).abs()
    interior = diff[..., 64:-64, 64:-64]
    assert diff.max() < 1e-5 and interior.max() < 1e-5  # vs outputs ~0.5: float32 round-off level
    assert diff.mean() < 1e-7
    # a short overlap loses context: still close, visibly less exact (the blend is what hides it)
    short = Predictor(tiny_model, device="cpu", tile_size=256, overlap=16).predict(x)
    assert diff.max() < (short - full).abs().max() < 5e-3


def test_tiled_matches_untiled_with_output_scale_2_and_multichannel(
    tiny_model_x2_multichannel, frame
):
    model = tiny_model_x2_multichannel
    x = frame(2, 150, 203).numpy()[0]  # (C, H, W) numpy
    full = Predictor(model, device="cpu").predict(x)
    tiled = Predictor(model, device="cpu", tile_size=64, overlap=32).predict(x)
    assert isinstance(tiled, np.ndarray) and tiled.shape == full.shape == (3, 300, 406)
    assert np.abs(tiled - full).max() < 1e-5


def test_automatic_tiling_when_the_frame_exceeds_the_memory_budget(tiny_model, frame):
    x = frame(1, 300, 333)
    small = Predictor(tiny_model, device="cpu", memory_budget_mb=2, overlap=64)
    frames, tile = small.plan(1, 300, 333)
    assert tile is not None and tile % tiny_model.config.size_multiple == 0 and tile < 300
    full = Predictor(tiny_model, device="cpu", memory_budget_mb=1e4)
    assert full.plan(1, 300, 333) == (1, None)
    assert (small.predict(x) - full.predict(x)).abs().max() < 1e-5


def test_batches_too_large_together_are_split_not_tiled(tiny_model, smooth):
    p = Predictor(tiny_model, device="cpu", memory_budget_mb=3)
    frames, tile = p.plan(16, 64, 64)
    assert tile is None and 1 <= frames < 16
    x = smooth(16, 1, 64, torch.Generator().manual_seed(2))
    with torch.inference_mode():
        ref = tiny_model(x)
    assert torch.allclose(p.predict(x), ref, atol=1e-6)


@pytest.mark.parametrize("as_numpy", [True, False])
def test_predict_returns_the_kind_and_rank_it_was_given(tiny_model, smooth, as_numpy):
    p = Predictor(tiny_model, device="cpu")
    batch = smooth(3, 1, 40, torch.Generator().manual_seed(3))[..., :37]
    with torch.inference_mode():
        ref = tiny_model(batch)
    for x, want in [(batch[0, 0], ref[0, 0]), (batch[0], ref[0]), (batch, ref)]:
        x_in = x.numpy() if as_numpy else x
        y = p.predict(x_in)
        assert type(y) is type(x_in) and y.shape == tuple(want.shape)
        assert y.dtype == (np.float32 if as_numpy else torch.float32)
        assert np.allclose(np.asarray(y), want.numpy(), atol=1e-6)


def test_stream_keeps_order_across_batches_and_shape_changes(tiny_model, smooth):
    p = Predictor(tiny_model, device="cpu")
    g = torch.Generator().manual_seed(4)
    frames = [smooth(1, 1, 32, g)[0, 0].numpy() for _ in range(5)]
    frames.insert(2, smooth(1, 1, 48, g)[0, 0].numpy())  # a different size mid-stream
    out = list(p.stream(iter(frames), batch_size=3))
    assert [o.shape for o in out] == [f.shape for f in frames]
    for f, o in zip(frames, out, strict=True):
        assert np.allclose(o, p.predict(f), atol=1e-6)


def test_channel_mismatch_and_bad_options_are_value_errors(tiny_model):
    p = Predictor(tiny_model, device="cpu")
    with pytest.raises(ValueError, match="3 channels but the model expects 1"):
        p.predict(np.zeros((3, 16, 16), np.float32))
    with pytest.raises(ValueError, match="multiple of 8"):
        Predictor(tiny_model, device="cpu", tile_size=100)
    with pytest.raises(ValueError, match="precision"):
        Predictor(tiny_model, device="cpu", precision="fp16")  # type: ignore[arg-type]


def test_from_checkpoint_loads_safetensors_and_names_missing_files(tmp_path, tiny_model, frame):
    save_model(tiny_model, tmp_path / "model.safetensors")
    p = Predictor.from_checkpoint(tmp_path, device="cpu", precision="fp32", overlap=32)
    x = frame(1, 40, 56)
    with torch.inference_mode():
        assert torch.equal(p.predict(x), tiny_model(x))
    with pytest.raises(CheckpointError, match="nope: no such checkpoint"):
        Predictor.from_checkpoint(tmp_path / "nope")


def test_bf16_autocast_on_cpu_stays_close_to_fp32(tiny_model, frame):
    x = frame(1, 64, 64)
    fp32 = Predictor(tiny_model, device="cpu", precision="fp32").predict(x)
    bf16 = Predictor(tiny_model, device="cpu", precision="bf16").predict(x)
    assert bf16.dtype == torch.float32 and (bf16 - fp32).abs().max() < 0.05


def test_auto_device_on_a_cpu_only_machine_is_cpu_and_fp32():
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("this test is about CPU-only machines")
    p = Predictor(MCNN(ModelConfig(depth=1, base_width=4, branches=0)))
    assert p.device.type == "cpu" and p.amp_dtype is None and not p.channels_last


def test_auto_precision_is_fp32_for_inference(tiny_model):
    """bf16 autocast measured slower than fp32 on an H100 (README, Benchmarks): auto = fp32."""
    assert Predictor(tiny_model, device="cpu").amp_dtype is None
    assert Predictor(tiny_model, device="cpu", precision="bf16").amp_dtype == torch.bfloat16


def test_pinned_streaming_is_a_no_op_without_cuda_and_forward_only_is_the_bare_network(tiny_model):
    x = torch.rand(1, 1, 32, 32)
    plain = Predictor(tiny_model, device="cpu")
    pinned = Predictor(tiny_model, device="cpu", pinned=True)
    assert plain.pinned is False and pinned.pinned is False and pinned._staging == {}
    np.testing.assert_array_equal(pinned.predict(x.numpy()), plain.predict(x.numpy()))
    torch.testing.assert_close(pinned.forward_only(x), plain.predict(x))


def test_compile_modes_are_checked_and_reduce_overhead_matches_eager_on_cpu(tiny_model):
    with pytest.raises(ValueError, match="compile='fast'"):
        Predictor(tiny_model, device="cpu", compile="fast")  # type: ignore[arg-type]
    assert Predictor(tiny_model, device="cpu", compile=True).compile_mode == "default"
    assert Predictor(tiny_model, device="cpu").compile_mode is None
    x = np.random.default_rng(0).random((1, 24, 16), dtype=np.float32)
    graphs = Predictor(tiny_model, device="cpu", compile="reduce-overhead")
    eager = Predictor(tiny_model, device="cpu")
    for _ in range(2):  # the second call runs the compiled code, not the first-call path
        np.testing.assert_allclose(graphs.predict(x), eager.predict(x), atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="page-locked memory needs CUDA")
def test_pinned_cuda_streaming_matches_pageable_and_returns_fresh_arrays(tiny_model):
    import copy

    from mcnn.infer.memory import estimate_inference_bytes

    model = copy.deepcopy(tiny_model)  # the session's model stays on the CPU
    frames = [np.random.default_rng(s).random((1, 32, 48), dtype=np.float32) for s in range(3)]
    pinned = Predictor(model, device="cuda")
    plain = Predictor(model, device="cuda", pinned=False)
    assert pinned.pinned and not plain.pinned
    outs = [pinned.predict(f) for f in frames]
    assert all(b.is_pinned() for b in pinned._staging.values())
    for f, y in zip(frames, outs, strict=True):  # earlier results were not overwritten
        np.testing.assert_allclose(y, plain.predict(f), atol=1e-4)
    batch = torch.from_numpy(np.stack(frames))
    one_frame_mb = 1.5 * estimate_inference_bytes(model.config, 32, 48) / 2**20
    chunked = Predictor(model, device="cuda", memory_budget_mb=one_frame_mb)  # a frame per pass
    assert chunked.plan(3, 32, 48) == (1, None)
    torch.testing.assert_close(chunked.predict(batch), plain.predict(batch), atol=1e-4, rtol=0)


def test_flip_ensemble_averages_the_mirror_images_and_budgets_for_them(
    tiny_model_x2_multichannel, frame
):
    model = tiny_model_x2_multichannel  # output_scale 2 and several channels: flips must line up
    x = frame(2, 64, 96)
    plain = Predictor(model, device="cpu")
    ens = Predictor(model, device="cpu", flip_ensemble=True)
    with torch.inference_mode():
        views = [(model(x.flip(d)).flip(d) if d else model(x)) for d in ((), (-1,), (-2,), (-2, -1))]
    want = torch.stack(views).mean(0)
    got = ens.predict(x)
    assert got.shape == plain.predict(x).shape == (1, 3, 128, 192)
    assert (got - want).abs().max() < 1e-5
    assert (got - views[0]).abs().max() > 1e-4  # a trained net is not mirror-symmetric: it averages
    # the same result tiled, and four views count four times against the memory budget
    tiled = Predictor(model, device="cpu", flip_ensemble=True, tile_size=64, overlap=32)
    assert (tiled.predict(x) - got).abs().max() < 1e-5
    per_frame_mb = estimate_inference_bytes(model.config, 64, 96) / 2**20
    one = Predictor(model, device="cpu", memory_budget_mb=9.5 * per_frame_mb)
    four = Predictor(model, device="cpu", memory_budget_mb=9.5 * per_frame_mb, flip_ensemble=True)
    assert one.plan(16, 64, 96) == (9, None) and four.plan(16, 64, 96) == (2, None)

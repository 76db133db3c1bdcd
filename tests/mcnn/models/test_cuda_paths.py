"""The GPU code paths (bf16 autocast, channels_last) on a real CUDA device.

Skipped where there is no CUDA device (CI has none); run on a GPU machine with
``python -m pytest tests/mcnn/models/test_cuda_paths.py``. Their CPU fallbacks are tested in
test_mcnn.py (bf16 autocast on the CPU) and the trainer/predictor tests.
"""

from __future__ import annotations

import pytest
import torch

from mcnn.models import MCNN, ModelConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("skip", ["add", "concat"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_bf16_autocast_on_cuda_keeps_fp32_outputs(skip, channels_last):
    torch.manual_seed(0)
    cfg = ModelConfig(depth=5, base_width=32, max_width=256, branches=4, skip=skip)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    m = MCNN(cfg).cuda().eval().to(memory_format=fmt)
    with torch.no_grad():
        m.head.bias.fill_(3.0)  # a phase around 3 rad
    x = torch.rand(4, 1, 128, 128, device="cuda").contiguous(memory_format=fmt)
    with torch.no_grad():
        ref = m(x)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            got = m(x)
    assert got.dtype == torch.float32
    assert float((got - ref).abs().max()) <= 1e-3 * float(ref.abs().max())
    assert got.unique().numel() > 0.9 * got.numel()


def test_training_step_under_bf16_on_cuda_gives_finite_fp32_gradients():
    torch.manual_seed(0)
    m = MCNN(ModelConfig(depth=4, base_width=16, max_width=128, branches=4)).cuda()
    m = m.to(memory_format=torch.channels_last)
    x = torch.rand(2, 1, 64, 64, device="cuda").contiguous(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        outs = m.forward_multiscale(x)
    loss = sum(o.float().abs().mean() for o in outs)
    loss.backward()
    grads = [p.grad for p in m.parameters()]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all()
               for g in grads)

"""Device names: one resolver for training, inference and benchmarks, with one-line errors."""

import pytest
import torch

from mcnn.device import autocast_dtype, select_device


def test_cpu_and_auto_resolve_here():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type in ("cpu", "cuda", "mps")


@pytest.mark.parametrize("name, fragment", [
    ("tpu9", "not a device name"),
    ("meta", "expected auto, cpu, cuda"),
])
def test_bad_names_are_one_line_errors(name, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        select_device(name)
    assert "\n" not in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_missing_cuda_is_named():
    with pytest.raises(ValueError, match="no CUDA device"):
        select_device("cuda:1")


def test_autocast_is_bf16_on_cuda_only_when_auto():
    assert autocast_dtype("auto", torch.device("cpu")) is None
    assert autocast_dtype("auto", torch.device("cuda", 0)) is torch.bfloat16
    assert autocast_dtype("fp32", torch.device("cuda", 0)) is None


def test_training_runtime_uses_the_same_resolver():
    from mcnn.train import runtime

    assert runtime.select_device is select_device and runtime.autocast_dtype is autocast_dtype

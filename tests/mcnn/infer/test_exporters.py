"""ONNX (any size, checked with onnxruntime) and TorchScript (scripted, any size) exports."""

from __future__ import annotations

import sys

import pytest
import torch

from mcnn.infer import export
from mcnn.infer.export import (
    ExportError,
    check_onnx,
    check_torchscript,
    export_onnx,
    export_torchscript,
)
from mcnn.models import MCNN, LowPassConfig, ModelConfig


@pytest.fixture(scope="module")
def model() -> MCNN:
    """Every size-dependent path at once: padding, low-pass front, x2 output, 2 in / 3 out."""
    torch.manual_seed(0)
    cfg = ModelConfig(depth=3, base_width=8, max_width=16, branches=2, output_scale=2,
                      in_channels=2, out_channels=3, lowpass=LowPassConfig())
    return MCNN(cfg).eval()


def test_dynamic_onnx_matches_pytorch_at_sizes_and_batches_it_was_not_exported_at(tmp_path, model):
    done = export_onnx(model, tmp_path / "m.onnx", height=32, width=32, dynamic=True)
    assert (done.exporter, done.dynamic) == ("dynamo", True) and done.path.is_file()
    assert check_onnx(model, done.path, [(32, 32), (37, 53), (8, 100)]) < 1e-4
    assert check_onnx(model, done.path, [(45, 31)], batch=3) < 1e-4


def test_legacy_exporter_is_the_fallback_when_dynamo_fails(tmp_path, model, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported construct")

    monkeypatch.setattr(export, "_export_dynamo", broken)
    done = export_onnx(model, tmp_path / "m.onnx", height=32, width=32)
    assert (done.exporter, done.dynamic) == ("legacy", True)
    assert check_onnx(model, done.path, [(37, 53)]) < 1e-4


def test_missing_export_extra_is_a_one_line_install_hint(tmp_path, model, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import fails as if not installed
    with pytest.raises(ExportError, match=r'pip install "mcnn-imaging\[export\]"') as info:
        export_onnx(model, tmp_path / "m.onnx")
    assert "\n" not in str(info.value)


def test_torchscript_is_scripted_for_any_size_and_keeps_both_entry_points(tmp_path, model):
    assert export_torchscript(model, tmp_path / "m.pt") == "script"
    assert check_torchscript(model, tmp_path / "m.pt", [(37, 53), (64, 16)]) == 0.0
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    outs = loaded.forward_multiscale(torch.rand(1, 2, 40, 40))
    assert [tuple(o.shape[-3:]) for o in outs] == [(3, 80, 80), (3, 40, 40), (3, 20, 20)]

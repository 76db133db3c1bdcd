"""mcnn-export end to end: files written, errors against PyTorch reported, one-line user errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import onnxruntime as ort
import torch

from apps import export
from mcnn.models import MCNN, ModelConfig
from mcnn.weights import save_model


def _checkpoint(tmp_path, **kw):
    torch.manual_seed(0)
    cfg = {"depth": 2, "base_width": 8, "max_width": 16, "branches": 1, **kw}
    model = MCNN(ModelConfig(**cfg)).eval()
    save_model(model, tmp_path / "model.safetensors")
    return tmp_path / "model.safetensors", model


def test_both_formats_are_written_and_match_pytorch(tmp_path, capsys):
    ckpt, model = _checkpoint(tmp_path, output_scale=2, in_channels=2)
    assert export.main([str(ckpt), "-o", str(tmp_path / "exp" / "model"), "--height", "32",
                        "--width", "48", "--format", "both"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["onnx"]["dynamic"] and report["onnx"]["max_abs_error"] < 1e-4
    assert report["onnx"]["checked_sizes"] == [[32, 48], [45, 77]]
    assert report["torchscript"]["method"] == "script"
    assert report["torchscript"]["max_abs_error"] == 0.0
    # the files work on their own, at a size and batch never used during export
    x = torch.rand(2, 2, 19, 23)
    with torch.inference_mode():
        ref = model(x)
    session = ort.InferenceSession(str(tmp_path / "exp" / "model.onnx"))
    got = session.run(None, {"input": x.numpy()})[0]
    assert got.shape == (2, 1, 38, 46) and np.abs(got - ref.numpy()).max() < 1e-4
    loaded = torch.jit.load(str(tmp_path / "exp" / "model.pt"))
    assert torch.equal(loaded(x), ref)


def test_static_torchscript_only_into_an_existing_folder(tmp_path, capsys):
    ckpt, _ = _checkpoint(tmp_path)
    (tmp_path / "out").mkdir()
    assert export.main([str(ckpt), "-o", str(tmp_path / "out"), "--format", "torchscript"]) == 0
    assert (tmp_path / "out" / "model.pt").is_file()
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_user_errors_exit_2_with_one_line(tmp_path, capsys, monkeypatch):
    assert export.main([str(tmp_path / "nope"), "-o", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope: no such checkpoint" in err[0]
    ckpt, _ = _checkpoint(tmp_path)
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if the export extra were not installed
    assert export.main([str(ckpt), "-o", str(tmp_path / "m"), "--format", "onnx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'pip install "mcnn-imaging[export]"' in err[0]


def test_tie_front_model_exports_torchscript_and_refuses_onnx_in_one_line(tmp_path, capsys):
    from mcnn.models.config import TieFrontConfig

    front = TieFrontConfig(defocus_um=[-5.0, 5.0], wavelength_um=0.532, pixel_size_um=1.0,
                           medium_index=1.0)
    ckpt, _ = _checkpoint(tmp_path, in_channels=2, tie_front=front)
    assert export.main([str(ckpt), "-o", str(tmp_path / "m"), "--height", "24", "--width",
                        "32"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "torchscript" in report["onnx"]["skipped"]
    assert report["torchscript"]["method"] == "script"
    assert report["torchscript"]["max_abs_error"] < 1e-5
    assert export.main([str(ckpt), "-o", str(tmp_path / "m2"), "--format", "onnx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tie_front" in err[0] and "--format torchscript" in err[0]

"""Exporting a trained MCNN for deployment: ONNX (any input size) and TorchScript.

ONNX: torch 2.13's ``torch.onnx.export`` defaults to the ``torch.export``-based ("dynamo")
exporter, which needs onnxscript. We use it first, with symbolic batch, height and width, so one
file serves every frame size (the model pads and crops with size-independent operations). If it
fails on some construct we fall back to the legacy TorchScript-based exporter (deprecated but
still shipped) with dynamic axes, and if a dynamic export fails altogether, to a fixed size.
The result says which route was taken. ``check_onnx`` runs the file with onnxruntime against
PyTorch; ``check_torchscript`` loads a TorchScript file back with ``torch.jit.load``.

onnx, onnxscript and onnxruntime are the optional ``export`` extra and imported only here.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mcnn.models import MCNN

log = logging.getLogger(__name__)

EXPORT_EXTRA_HINT = 'ONNX export needs the export extra: pip install "mcnn-imaging[export]"'
INPUT_NAME, OUTPUT_NAME = "input", "output"
# the exporters' own INFO chatter (optimizer passes, skipped torchvision ops)
NOISY_LOGGERS = ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir")


class ExportError(ValueError):
    """An export that cannot be done as asked; the message says why in one line."""


@dataclass(frozen=True)
class OnnxExport:
    """Where an ONNX file went and how it was made."""

    path: Path
    exporter: str  # "dynamo" or "legacy"
    dynamic: bool  # batch, height and width symbolic
    opset: int


def _require(*modules: str) -> None:
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ExportError(f"{EXPORT_EXTRA_HINT} (missing {name})") from exc


def example_input(model: MCNN, height: int, width: int, batch: int = 1) -> torch.Tensor:
    """A reproducible ``(batch, in_channels, height, width)`` float32 test input in [0, 1)."""
    g = torch.Generator().manual_seed(0)
    return torch.rand(batch, model.config.in_channels, height, width, generator=g)


@contextlib.contextmanager
def _quiet():
    """The exporters print progress to stdout and warn about unrelated ops; keep that in the log."""
    buffer = io.StringIO()
    loggers = [logging.getLogger(name) for name in NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(buffer):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
    if buffer.getvalue().strip():
        log.debug("exporter output:\n%s", buffer.getvalue().rstrip())


def _export_dynamo(model: MCNN, x: torch.Tensor, path: Path, dynamic: bool, opset: int) -> None:
    from torch.export import Dim

    shapes = None
    if dynamic:
        # names, not bounds, matter; min=1 keeps every frame size legal (the model pads)
        shapes = {"x": {0: Dim("batch", min=1, max=65536), 2: Dim("height", min=1, max=65536),
                        3: Dim("width", min=1, max=65536)}}
    with _quiet():
        torch.onnx.export(
            model, (x,), str(path), dynamo=True, input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME], dynamic_shapes=shapes, opset_version=opset,
            external_data=False, verbose=False,
        )


def _export_legacy(model: MCNN, x: torch.Tensor, path: Path, dynamic: bool, opset: int) -> None:
    axes = None
    if dynamic:
        axes = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                OUTPUT_NAME: {0: "batch", 2: "out_height", 3: "out_width"}}
    with _quiet():
        torch.onnx.export(
            model, (x,), str(path), dynamo=False, input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME], dynamic_axes=axes, opset_version=opset,
        )


NO_ONNX_TIE_FRONT = ("model.tie_front solves the TIE with FFTs, which the ONNX exporters cannot "
                     "convert; export this model with --format torchscript")


def export_onnx(
    model: MCNN,
    path: Path,
    *,
    height: int = 64,
    width: int = 64,
    dynamic: bool = True,
    opset: int = 18,
) -> OnnxExport:
    """Write ``path`` (.onnx, weights inside). ``height``/``width``: the example (or fixed) size."""
    if getattr(model, "tie_front", None) is not None:
        raise ExportError(NO_ONNX_TIE_FRONT)
    _require("onnx", "onnxscript")
    import onnx

    model = model.cpu().eval()
    x = example_input(model, height, width)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    routes = [("dynamo", dynamic), ("legacy", dynamic)] + ([("dynamo", False)] if dynamic else [])
    errors = []
    for exporter, dyn in routes:
        try:
            (_export_dynamo if exporter == "dynamo" else _export_legacy)(model, x, path, dyn, opset)
            onnx.checker.check_model(str(path))
        except Exception as exc:  # an exporter limitation: try the next route
            errors.append(f"{exporter}{' dynamic' if dyn else ''}: {type(exc).__name__}: {exc}")
            log.warning("ONNX export via %s (dynamic=%s) failed: %s", exporter, dyn,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            continue
        if dynamic and not dyn:
            log.warning("exported at the fixed size %dx%d (dynamic export failed)", height, width)
        return OnnxExport(path, exporter, dyn, opset)
    raise RuntimeError("ONNX export failed on every route:\n" + "\n".join(errors))


def check_onnx(
    model: MCNN, path: Path, sizes: list[tuple[int, int]], batch: int = 1
) -> float:
    """Largest absolute difference between onnxruntime and PyTorch (fp32, CPU) over ``sizes``."""
    _require("onnxruntime")
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model = model.cpu().eval()
    worst = 0.0
    for h, w in sizes:
        x = example_input(model, h, w, batch)
        with torch.inference_mode():
            ref = model(x).numpy()
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        if got.shape != ref.shape:
            raise ExportError(f"{path}: ONNX output shape {got.shape} != PyTorch's {ref.shape}")
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def export_torchscript(model: MCNN, path: Path, *, height: int = 64, width: int = 64) -> str:
    """Write a TorchScript file; returns "script" (any input size) or "trace" (fixed size).

    Scripting keeps the size-independent padding logic, so the file takes any frame size;
    tracing (the fallback) bakes the example's ``height x width`` in.
    """
    model = model.cpu().eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice
        try:
            module, how = torch.jit.script(model), "script"
        except Exception as exc:
            log.warning("torch.jit.script failed (%s); tracing at %dx%d", exc, height, width)
            module, how = torch.jit.trace(model, example_input(model, height, width)), "trace"
        module.save(str(path))
    return how


def check_torchscript(model: MCNN, path: Path, sizes: list[tuple[int, int]]) -> float:
    """Largest absolute difference between the reloaded TorchScript file and PyTorch."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(path), map_location="cpu").eval()
    model = model.cpu().eval()
    worst = 0.0
    with torch.inference_mode():
        for h, w in sizes:
            x = example_input(model, h, w)
            worst = max(worst, float((loaded(x) - model(x)).abs().max()))
    return worst

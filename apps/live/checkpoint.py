"""What a viewer needs from a checkpoint besides the weights: the training data's preprocessing.

``mcnn-train`` saves its validated config as ``config.json`` next to ``model.safetensors``; for a
recording (``data.kind = pairs``) it says how camera frames were cropped, flipped and resized, which
a live view must repeat exactly.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class InputSpec:
    """Camera frame -> model input: crop ``roi`` (x, y, w, h), flip, resize to ``size_hw``.

    ``known`` is False when no training config said anything (a bare model file).
    """

    roi: tuple[int, int, int, int] | None = None
    mirror: bool = False
    size_hw: tuple[int, int] | None = None
    grayscale: bool = False
    known: bool = True


def training_config(checkpoint: Path) -> dict[str, Any]:
    """The ``config.json`` saved with the checkpoint (empty when there is none, e.g. a bare file)."""
    from mcnn.weights import resolve_model_file

    model_file = resolve_model_file(Path(checkpoint))
    path = model_file.parent / "config.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    return data if isinstance(data, dict) else {}


def input_spec_from_training(config: dict[str, Any]) -> InputSpec:
    """The preprocessing of the training data (pairs: roi, mirror, camera_size, grayscale)."""
    data = config.get("data") or {}
    if not data:
        return InputSpec(known=False)
    if data.get("kind") != "pairs":
        size = data.get("size")
        if isinstance(size, int):
            size = (size, size)
        return InputSpec(size_hw=tuple(size) if size else None)  # type: ignore[arg-type]
    roi = data.get("camera_roi")
    if roi is None and data.get("path"):  # training used the recording's calibrated ROI
        calibration = Path(data["path"]) / "calibration.json"
        if calibration.is_file():
            roi = (json.loads(calibration.read_text()).get("roi") or {}).get("roi")
    size = data.get("camera_size")
    return InputSpec(roi=tuple(roi) if roi else None,  # type: ignore[arg-type]
                     mirror=bool(data.get("mirror", False)),
                     size_hw=tuple(size) if size else None,  # type: ignore[arg-type]
                     grayscale=bool(data.get("grayscale", False)))


def add_speed_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device``, ``--compile`` and ``--compile-mode``: how a viewer runs its model."""
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:N (default auto)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the model (the first frame waits for the compile)")
    parser.add_argument("--compile-mode", default="reduce-overhead",
                        choices=["default", "reduce-overhead", "max-autotune"],
                        help="with --compile (default reduce-overhead: CUDA graphs on a GPU)")


def predictor_options(args: argparse.Namespace) -> dict[str, Any]:
    """``Predictor`` keywords from :func:`add_speed_arguments`'s flags (pinned copies on CUDA)."""
    return {"device": args.device, "compile": args.compile_mode if args.compile else False}


def describe_predictor(predictor: Any) -> dict[str, Any]:
    """What ran the model, for a viewer's benchmark JSON."""
    return {"device": str(predictor.device), "compile": predictor.compile_mode,
            "pinned": bool(getattr(predictor, "pinned", False))}


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """How long a viewer runs and what it leaves: the flags both viewers share."""
    p.add_argument("--frames", type=int, metavar="N", help="stop after N displayed frames")
    p.add_argument("--warmup", type=int, default=3, metavar="N",
                   help="headless: frames not measured at the start (default 3)")
    p.add_argument("--no-window", action="store_true",
                   help="headless: no window; print the benchmark JSON (needs --frames)")
    p.add_argument("--screenshot", type=Path, metavar="PNG",
                   help="save the window as PNG when it closes (use with --frames)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def check_frame_arguments(args: Any) -> None:
    """The headless-run flags both viewers share: ``--no-window`` needs ``--frames N >= 1``."""
    if args.no_window and not args.frames:
        raise ValueError("--no-window needs --frames N (how many frames to measure)")
    if args.frames is not None and args.frames < 1:
        raise ValueError(f"--frames {args.frames}: must be >= 1")

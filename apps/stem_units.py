"""The command-line options that say how STEM frames are brought into a model's units, declared
once for every command that applies a STEM model to files (stem-denoise, mcnn-predict)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_unit_arguments(p: argparse.ArgumentParser) -> None:
    """``--dose-e-per-px`` or ``--calibration``, and ``--output-units``."""
    units = p.add_mutually_exclusive_group()
    units.add_argument("--dose-e-per-px", type=float, metavar="X",
                       help="STEM: electrons per pixel of every frame (default: each frame's mean)")
    units.add_argument("--calibration", type=Path, metavar="JSON",
                       help="STEM: detector noise calibration (gain, offset), from "
                       "stem-denoise --save-calibration")
    p.add_argument("--output-units", choices=["counts", "electrons", "model"], default="counts",
                   help="STEM: output in the input's counts (default), electrons per pixel, or "
                   "model units")


def add_pixel_arguments(p: argparse.ArgumentParser) -> None:
    """``--resample`` and ``--pixel-size``: one meaning in every command that takes them."""
    p.add_argument("--resample", action="store_true",
                   help="STEM: denoise each frame at the model's training pixel size and write "
                   "it back on the input's grid (needs the frames' pixel size: from the file or "
                   "--pixel-size)")
    p.add_argument("--pixel-size", metavar="LENGTH",
                   help="pixel size of every input, e.g. 10pm, 0.01nm, 1.5A (bare number: pm); "
                   "overrides the files' (warnings, --resample, scale bars, output TIFFs)")


def unit_arguments_given(args: argparse.Namespace) -> list[str]:
    """The unit options set on the command line (they only mean something for a STEM model)."""
    given = []
    if args.dose_e_per_px is not None:
        given.append("--dose-e-per-px")
    if args.calibration is not None:
        given.append("--calibration")
    if args.output_units != "counts":
        given.append("--output-units")
    if getattr(args, "resample", False):
        given.append("--resample")
    return given


def check_unit_arguments(args: argparse.Namespace) -> None:
    """Refuse option values that cannot be units, naming the option, before any file is read."""
    import math

    dose = args.dose_e_per_px
    if dose is not None and not (math.isfinite(dose) and dose > 0):
        raise ValueError(f"--dose-e-per-px {dose}: expected a finite number of electrons per "
                         "pixel > 0")


def load_calibration(path: Path | None) -> Any:
    """The :class:`~mcnn.stem.calibration.NoiseCalibration` at ``path`` (None: none given)."""
    if path is None:
        return None
    from mcnn.stem.calibration import NoiseCalibration

    return NoiseCalibration.load(path)


def check_stem_model(predictor: Any, checkpoint: Path) -> None:
    """A STEM denoiser maps one greyscale frame to one, at the same size."""
    c = predictor.config
    if (c.in_channels, c.out_channels, c.output_scale) != (1, 1, 1):
        raise ValueError(f"{checkpoint}: model maps {c.in_channels} -> {c.out_channels} channels "
                         f"at scale {c.output_scale}; STEM frames need 1 -> 1 at scale 1")

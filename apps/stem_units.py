"""The command-line options that say how STEM frames are brought into a model's units, declared
once for every command that applies a STEM model to files (stem-denoise, mcnn-predict)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

ResampleMode = Literal["auto", "on", "off"]
"""``args.resample``: ``--resample`` "on", ``--no-resample`` "off", neither "auto"."""


class FileWarnings:
    """Warnings said once per input file (every file gets its own, logged with the frame index)
    and listed by file in the summary: what stem-denoise and mcnn-predict report alike."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self.by_file: dict[str, list[str]] = {}

    def warn(self, path: object, index: int | None, text: str) -> None:
        said = self.by_file.setdefault(str(path), [])
        if text not in said:
            said.append(text)
            self.log.warning("%s%s: %s", path, "" if index is None else f"[{index}]", text)

    def summary(self) -> dict[str, Any]:
        """``warnings`` (every distinct text once) and ``warnings_by_file``."""
        return {"warnings": sorted({w for said in self.by_file.values() for w in said}),
                "warnings_by_file": {k: v for k, v in self.by_file.items() if v}}


# Options whose value may start with "-" ("--pixel-size -5pm" must reach the one-line check, not
# argparse's "expected one argument"): pass argv through ``apps.cli.attach_negative_values``.
SIGNED_VALUE_FLAGS = ("--pixel-size", "--dose-e-per-px")


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


def add_resample_arguments(p: argparse.ArgumentParser) -> None:
    """``--resample`` / ``--no-resample`` -> ``args.resample`` = "on" / "off", default "auto"
    (:func:`plan_resampling` says what each does)."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resample", dest="resample", action="store_const", const="on",
                       default="auto",
                       help="STEM: denoise every frame at the model's training pixel size and "
                       "bring the result back to the frame's grid (needs the frames' pixel size). "
                       "Default: only frames whose pixels are more than 1.5x finer than the "
                       "model's (downsampling; upsampling coarser frames was measured to invent "
                       "atoms)")
    group.add_argument("--no-resample", dest="resample", action="store_const", const="off",
                       help="STEM: denoise every frame on its own grid, whatever its pixel size")


def add_pixel_arguments(p: argparse.ArgumentParser) -> None:
    """``--resample``/``--no-resample`` and ``--pixel-size``: one meaning in every command."""
    add_resample_arguments(p)
    p.add_argument("--pixel-size", metavar="LENGTH",
                   help="pixel size of every input, e.g. 10pm, 0.01nm, 1.5A (bare number: pm); "
                   "overrides the files' (warnings, resampling, scale bars, output TIFFs)")


def unit_arguments_given(args: argparse.Namespace) -> list[str]:
    """The unit options set on the command line (they only mean something for a STEM model)."""
    given = []
    if args.dose_e_per_px is not None:
        given.append("--dose-e-per-px")
    if args.calibration is not None:
        given.append("--calibration")
    if args.output_units != "counts":
        given.append("--output-units")
    if getattr(args, "resample", "auto") == "on":  # --no-resample asks for nothing to be done
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


def parse_pixel_size(text: str) -> Any:
    """``--pixel-size``: ``"10pm"``, ``"0.01nm"``, ``"1.5A"`` or a bare number (pm) -> a square
    :class:`~mcnn.data.image_io.PixelSize` in pm (nm, um and mm are kept as given: units a TIFF
    reader knows)."""
    import math

    from mcnn.data.units import PixelSize, length_in, parse_length

    try:
        value, unit = parse_length(text, default_unit="pm")
    except ValueError as exc:
        raise ValueError(f"--pixel-size {text}: {exc}") from None
    if not math.isfinite(value):
        raise ValueError(f"--pixel-size {text}: expected a finite length such as 10pm")
    key = unit.strip().lower()
    if key in ("nm", "um", "mm", "µm", "μm"):
        unit = "um" if key in ("µm", "μm") else key
        return PixelSize(value, value, unit)
    pm = length_in(value, unit, "pm")
    return PixelSize(pm, pm, "pm")


def add_training_arguments(p: argparse.ArgumentParser) -> None:
    """mcnn-train's STEM options: train the simulator for a user's microscope."""
    size = p.add_mutually_exclusive_group()
    size.add_argument("--pixel-size", metavar="LENGTH",
                      help="STEM: train for frames of this pixel size (10pm, 0.0127nm, 1.5A; "
                      "bare number: pm): sets data.simulator.pixel_size_pm, so the column "
                      "spacing and width in pm become the right number of pixels")
    size.add_argument("--pixel-size-from", metavar="FILE",
                      help="STEM: the same, with the pixel size a microscope file records (DM3, "
                      "EMD, SER, MRC, TIFF, HDF5 ...)")
    p.add_argument("--calibration", type=Path, metavar="JSON",
                   help="STEM: detector noise calibration (stem-denoise --save-calibration): "
                   "the simulator's read noise becomes the detector's, in electrons")


def training_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``--pixel-size`` / ``--pixel-size-from`` / ``--calibration`` as dotted config overrides."""
    out: dict[str, Any] = {}
    if args.pixel_size is not None:
        out["data.simulator.pixel_size_pm"] = parse_pixel_size(args.pixel_size).to("pm").x
    elif args.pixel_size_from is not None:
        out["data.simulator.pixel_size_pm"] = file_pixel_size_pm(args.pixel_size_from)
    calibration = load_calibration(args.calibration)
    if calibration is not None:
        overrides = calibration.simulator_overrides()
        if not overrides:
            raise ValueError(f"{args.calibration}: its read noise was not measured (offset from "
                             f"{calibration.offset_from}, read noise assumed 0); calibrate with a "
                             "dark frame (stem-denoise --save-calibration ... --dark), or leave "
                             "out --calibration")
        out.update({f"data.simulator.{k}": v for k, v in overrides.items()})
    return out


def file_pixel_size_pm(path: str) -> float:
    """The pixel size (pm, along x) the first frame of a microscope file records; one line when
    it records none in length units."""
    from mcnn.data.image_io import open_frames
    from mcnn.stem.normalise import pixel_size_pm

    with open_frames(path) as stack:
        recorded = stack.pixel_size
    pm = pixel_size_pm(recorded)
    if pm is None:
        what = "none" if recorded is None else f"{recorded}, not a length"
        raise ValueError(f"{path}: --pixel-size-from needs a file that records its pixel size; it "
                         f"records {what} (give --pixel-size instead)")
    return pm


def check_stem_training(config: Any, given: list[str], source: Path) -> None:
    """The STEM training options only mean something for the STEM simulator with its column
    spacing and width in pm (else a pixel size would change nothing in the frames)."""
    data = config.data
    sim: Any = getattr(data, "simulator", None)
    if getattr(data, "kind", None) != "simulated" or getattr(sim, "name", None) != "stem":
        raise ValueError(f"{given[0]}: only for the STEM simulator; {source} trains on "
                         f"{getattr(sim, 'name', None) or getattr(data, 'kind', '?')} data")
    size_given = any(g.startswith("--pixel-size") for g in given)
    if size_given and (sim.spacing_pm_range is None or sim.atom_sigma_pm_range is None):
        raise ValueError(f"{given[0]}: {source} gives the column spacing and width in pixels "
                         "(spacing_px_range, atom_sigma_px_range), so a pixel size would not "
                         "change the frames; set data.simulator.spacing_pm_range and "
                         "atom_sigma_pm_range (as configs/denoise-stem-cpu.yaml does)")


def plan_resampling(path: Path, shape_hw: tuple[int, int], pixel_size: Any,
                    model_pixel_size_pm: float | None, mode: ResampleMode, *,
                    frame_dose: Callable[[], float | None] | None = None,
                    dose_ceiling: float | None = None) -> Any:
    """The :class:`~mcnn.stem.resample.FrameResampling` of one file's frames to the model's pixel
    size, or None to denoise them as recorded.

    ``mode`` is ``args.resample``. ``"on"`` (``--resample``): always; a file without a pixel size
    in length units, a model that records none, or frames that would become too small or too
    large are a one-line error naming it. ``"auto"`` (the default): only frames whose pixels are
    finer than the model's by more than ``PIXEL_TOLERANCE`` on both axes, which is averaging
    (measured +1.5 to +2.9 dB at 5 and 10 pm with a 20 pm model); frames it cannot do are denoised
    as recorded (the pixel-size warning says so). Coarser frames are never upsampled by default:
    bilinear upsampling correlates the noise, and at 40 pm the 20 pm model lost 7-11 dB that way
    and invented atoms in vacuum. Nor, by default, are frames whose dose per model pixel would
    exceed ``dose_ceiling`` (twice the training range's top, :func:`~mcnn.stem.normalise.
    training_dose_ceiling`): binning adds up electrons, and at 17-55 e/px on 10 pm frames
    resampling lost 1.8-2.9 dB. ``frame_dose()`` gives the file's first frame's dose per input
    pixel (None: unknown), asked only when that decides. ``"off"`` (``--no-resample``): never.
    """
    from mcnn.stem.normalise import PIXEL_TOLERANCE, pixel_size_pm
    from mcnn.stem.resample import FrameResampling

    if mode == "off" or not model_pixel_size_pm:
        if mode == "on":
            raise ValueError("--resample needs the model's training pixel size and the "
                             "checkpoint records no data.simulator.pixel_size_pm")
        return None
    if pixel_size_pm(pixel_size) is None:
        if mode == "auto":
            return None
        what = "records none" if pixel_size is None else f"records {pixel_size}, not a length"
        raise ValueError(f"{path}: --resample needs the frames' pixel size and the file {what}; "
                         "give it with --pixel-size (e.g. --pixel-size 10pm)")
    p = pixel_size.to("pm")
    if mode == "auto" and max(p.y, p.x) * PIXEL_TOLERANCE >= model_pixel_size_pm:
        return None
    try:
        grid = FrameResampling.between(shape_hw, (p.y, p.x), model_pixel_size_pm)
    except ValueError as exc:
        if mode == "auto":
            return None
        raise ValueError(f"{path}: {exc} (model pixel size {model_pixel_size_pm:g} pm)") from None
    if mode == "auto":
        shown = f"{p.x:.4g}" if p.x == p.y else f"{p.y:.4g} x {p.x:.4g} (y x)"
        log = logging.getLogger(__name__)
        dose = frame_dose() if frame_dose is not None and dose_ceiling else None
        if dose is not None and dose_ceiling and dose * grid.electrons_scale > dose_ceiling:
            log.info("%s: pixel size %s pm is finer than the model's %g pm, but at %.3g e/px per "
                     "model pixel (%.3g per input pixel) the frame would be above the doses it "
                     "knows (to %g): denoised as recorded (--resample: at the model's)", path,
                     shown, model_pixel_size_pm, dose * grid.electrons_scale, dose, dose_ceiling)
            return None
        log.info("%s: pixel size %s pm is finer than the model's %g pm: denoised at %g pm and "
                 "brought back (--no-resample: as recorded)", path, shown, model_pixel_size_pm,
                 model_pixel_size_pm)
    return grid


def first_frame_dose(frame: Any, calibration: Any, dose_e_per_px: float | None) -> float | None:
    """The dose per pixel of ``frame`` (counts) as the denoising will find it, or None where it
    cannot be known: what :func:`plan_resampling` weighs against the model's training doses."""
    from mcnn.stem.normalise import frame_units, known_dose

    return known_dose(frame_units(frame, calibration=calibration, dose_e_per_px=dose_e_per_px))


def pixel_size_notes(pixel_size: Any, grid: Any, model_pixel_size_pm: float | None,
                     mode: ResampleMode, give: str = "give it with --pixel-size") -> list[str]:
    """Per-file warnings about the grid a STEM model sees: an unknown pixel size taken to be the
    model's (by default; ``give`` says how to give it in this command), and an upsampling
    ``--resample`` (measured harmful)."""
    from mcnn.stem.normalise import pixel_size_pm

    if not model_pixel_size_pm:
        return []
    if grid is not None and grid.upsamples:
        return [f"--resample upsamples this file (pixels larger than the model's "
                f"{model_pixel_size_pm:g} pm): the interpolation correlates the noise, which the "
                "model never saw; measured with 40 pm frames and a 20 pm model it lost 7-11 dB "
                "against denoising as recorded and invented atoms in vacuum (train at the "
                "frames' pixel size instead: mcnn-train CONFIG --pixel-size-from FILE)"]
    if mode == "auto" and pixel_size_pm(pixel_size) is None:
        return [f"no pixel size in length units: taken to be the model's "
                f"{model_pixel_size_pm:g} pm (if it is not, {give}: at another pixel size the "
                "columns are not as wide in pixels as the model learnt)"]
    return []

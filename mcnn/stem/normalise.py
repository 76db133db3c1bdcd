"""Detector counts <-> the units a STEM model was trained in, and checks against its training data.

The simulator's input unit (``mcnn.physics.stem``) is electrons divided by the dose, mean about 1.
A real frame is ``counts = offset + gain * electrons``; the offset is often thousands of counts, so
dividing raw counts by their mean gives an input near 1 with almost no contrast (the network then
sees ~10^4 e/px and paints grid artefacts). Here, once:

    electrons = (counts - offset) / gain
    dose      = mean(electrons)           (electrons per pixel; or given on the command line)
    x         = electrons / dose          (the network input, mean ~1)

and back: ``counts = y * dose * gain + offset``. Offset and gain come from a
:class:`~mcnn.stem.calibration.NoiseCalibration` (best: fitted on frame pairs with a dark frame),
or are estimated from the frame itself (single-frame mean-variance fit; a warning says so).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mcnn.stem.calibration import NoiseCalibration, fit_noise

if TYPE_CHECKING:
    from mcnn.stem.resample import FrameResampling

log = logging.getLogger(__name__)

OutputUnits = Literal["counts", "electrons", "model"]

ASSUMED = "assumed (gain 1, offset 0)"
ASSUMED_SHIFTED = "assumed (gain 1, offset = frame minimum)"
UNKNOWN_DOSE = "frame mean of counts taken as electrons (unknown)"


@dataclass(frozen=True)
class FrameUnits:
    """How one frame was brought into model units (stored with each output frame)."""

    offset_counts: float
    gain_counts_per_e: float
    dose_e_per_px: float
    source: str  # "calibration", "estimated from the frame (offset from ...)", ASSUMED(_SHIFTED)
    dose_from: str  # "given", "frame mean" or UNKNOWN_DOSE (counts were not calibrated)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def frame_units(
    raw: np.ndarray,
    *,
    calibration: NoiseCalibration | None = None,
    dose_e_per_px: float | None = None,
) -> FrameUnits:
    """Offset, gain and dose for ``raw`` counts ``(H, W)``."""
    if calibration is not None:
        offset, gain, source = (calibration.offset_counts, calibration.gain_counts_per_e,
                                "calibration")
    else:
        try:
            est = fit_noise([raw])
            how = {"zero_peak": "its zero-electron peak", "intercept": "the mean-variance "
                   "intercept, assuming no read noise"}.get(est.offset_from, est.offset_from)
            offset, gain, source = est.offset_counts, est.gain_counts_per_e, \
                f"estimated from the frame (offset from {how})"
            if float(np.mean(raw)) - offset <= 0:
                raise ValueError("estimated offset above the frame mean")
        except ValueError as exc:
            log.debug("no noise estimate from the frame: %s", exc)
            offset, gain, source = 0.0, 1.0, ASSUMED
            if float(np.mean(raw)) <= 0 or float(np.min(raw)) < 0:
                # not raw counts (e.g. a dark-subtracted camera image): shift to start at 0
                offset, source = float(np.min(raw)), ASSUMED_SHIFTED
    if dose_e_per_px is not None:
        if not (dose_e_per_px > 0 and math.isfinite(dose_e_per_px)):
            raise ValueError(f"dose_e_per_px={dose_e_per_px}: must be a finite number > 0")
        return FrameUnits(offset, gain, float(dose_e_per_px), source, "given")
    dose = float((np.mean(raw, dtype=np.float64) - offset) / gain)
    if not dose > 0:
        raise ValueError(f"mean counts {float(np.mean(raw)):.6g} are not above the offset "
                         f"{offset:.6g}: the calibration does not fit this frame")
    return FrameUnits(offset, gain, dose, source,
                      UNKNOWN_DOSE if source.startswith("assumed") else "frame mean")


def units_warnings(units: FrameUnits) -> list[str]:
    """What a user must know about how a frame's units were found (fixed texts, so that a
    command says each once per file)."""
    if units.source.startswith("estimated"):
        return ["no noise calibration: offset and gain are estimated from each frame's own "
                "noise (steadier from a series: stem-denoise --save-calibration, with --dark)"]
    dose = ("the dose given is used" if units.dose_from == "given" else "so the dose is unknown "
            "(give a calibration or the dose: stem-denoise --calibration or --dose-e-per-px)")
    if units.source == ASSUMED:
        return ["no noise calibration given and none could be estimated from the frame: counts "
                f"are taken as electrons (gain 1, offset 0); {dose}"]
    if units.source == ASSUMED_SHIFTED:
        return ["frame values go below zero: not raw detector counts (a processed image?); "
                f"shifted by the frame minimum and taken as electrons; {dose}"]
    return []


def acquisition_warnings(meta: dict[str, Any]) -> list[str]:
    """A file that says it is a TEM camera image (``meta["acquisition"]``, read from the vendor's
    metadata by ``mcnn.data.microscope_meta``): a STEM model is not made for it. Nothing is
    guessed from names: files that do not say are not warned about."""
    if meta.get("acquisition") != "camera":
        return []
    detector = f" ({meta['detector']})" if meta.get("detector") else ""
    return [f"the file records a camera image{detector}, not a scanned STEM detector: the model "
            "learnt HAADF STEM frames, whose noise and contrast a camera image does not share"]


def dose_label(units: FrameUnits) -> str:
    """``dose 0.12 e/px``, or why the dose is not known (for figure titles and logs)."""
    if units.dose_from == UNKNOWN_DOSE:
        return "dose unknown (counts taken as electrons)"
    return f"dose {units.dose_e_per_px:.3g} e/px"


MIN_FRAME_PX = 16
"""The smallest side of a STEM frame (also after resampling): below it the network sees almost
nothing."""


def check_frame_shape(shape: tuple[int, ...], where: object) -> None:
    """A STEM frame is 2-D and at least ``MIN_FRAME_PX`` a side; else one line naming ``where``."""
    if len(shape) != 2 or min(shape) < MIN_FRAME_PX:
        size = " x ".join(str(int(n)) for n in shape)
        raise ValueError(f"{where}: frame of {size} px; a STEM frame needs at least "
                         f"{MIN_FRAME_PX} x {MIN_FRAME_PX} px")


def to_electrons(raw: np.ndarray, units: FrameUnits) -> np.ndarray:
    """Counts -> electrons per pixel, float64: ``(counts - offset) / gain``."""
    return (np.asarray(raw, np.float64) - units.offset_counts) / units.gain_counts_per_e


def to_model_units(raw: np.ndarray, units: FrameUnits) -> np.ndarray:
    """Counts -> network input (electrons / dose), float32."""
    return (to_electrons(raw, units) / units.dose_e_per_px).astype(np.float32)


def from_model_units(y: np.ndarray, units: FrameUnits, to: OutputUnits = "counts",
                     resampling: FrameResampling | None = None) -> np.ndarray:
    """Network output -> ``counts`` (the input's scale), ``electrons`` per pixel, or ``model``.

    With ``resampling`` (the one :func:`frame_to_model_units` used), ``y`` is on the model grid
    and ``units`` are that grid's: the output comes back on the input's grid, in electrons per
    input pixel / counts of the input.
    """
    if resampling is not None:
        y, units = resampling.to_input(np.asarray(y)), input_grid_units(units, resampling)
    y = np.asarray(y, np.float64)
    if to == "model":
        return y.astype(np.float32)
    electrons = y * units.dose_e_per_px
    if to == "electrons":
        return electrons.astype(np.float32)
    return (electrons * units.gain_counts_per_e + units.offset_counts).astype(np.float32)


def input_grid_units(units: FrameUnits, resampling: FrameResampling | None) -> FrameUnits:
    """Units on the model grid -> the same units on the input's grid (the dose per input pixel:
    the model grid's divided by the area ratio). Without ``resampling``: ``units`` unchanged."""
    if resampling is None:
        return units
    return replace(units, dose_e_per_px=units.dose_e_per_px / resampling.electrons_scale)


DOSE_TOLERANCE = 2.0
"""How far (as a factor) a frame's dose may be outside the model's training range before it is
warned about (and, above it, not resampled by default: binning raises the dose per pixel)."""


def training_dose_ceiling(training_data: dict[str, Any] | None) -> float | None:
    """The highest dose per pixel a STEM model is taken to know: the top of its training range
    times ``DOSE_TOLERANCE`` (None when the checkpoint records no range)."""
    sim = (training_data or {}).get("simulator") or {}
    rng = sim.get("dose_e_per_px_range") or (None, None)
    return float(rng[1]) * DOSE_TOLERANCE if rng[1] else None


def known_dose(units: FrameUnits) -> float | None:
    """The frame's dose in e/px, or None where it is unknown (counts taken as electrons)."""
    return None if units.dose_from == UNKNOWN_DOSE else units.dose_e_per_px


PIXEL_TOLERANCE = 1.5
"""How far (as a factor) a frame's pixel size may be from the model's before it is warned about,
and, finer than that, resampled by default (``stem-denoise``)."""


def training_warnings(
    units: FrameUnits,
    pixel_size_pm: float | tuple[float, float] | None,
    training_data: dict[str, Any] | None,
    *,
    tolerance: float = DOSE_TOLERANCE,
    pixel_tolerance: float = PIXEL_TOLERANCE,
    dose_note: str = "",
) -> list[str]:
    """Why this frame may be far from what the model was trained on (empty: nothing noticed).

    Checks the dose against the simulator's ``dose_e_per_px_range`` within a factor ``tolerance``
    and the pixel size (one value, or ``(y, x)``: the axis farther off is checked) against its
    ``pixel_size_pm`` within a factor ``pixel_tolerance`` (when the checkpoint records them). The
    pixel size is held tighter: the training ranges of column spacing and width are already
    broad, so a frame at half the pixel size shows columns twice as many pixels apart and wide,
    mostly outside what the model saw. ``dose_note`` follows the dose in its warning (which grid
    it is per).
    """
    out: list[str] = []
    sim = (training_data or {}).get("simulator") or {}
    if not sim:
        return out
    if sim.get("name") != "stem":
        out.append(f"the model was trained on {sim.get('name')!r} data, not STEM")
        return out
    lo, hi = sim.get("dose_e_per_px_range", (None, None))
    d = units.dose_e_per_px
    if units.dose_from != UNKNOWN_DOSE and lo and hi and not lo / tolerance <= d <= hi * tolerance:
        out.append(f"dose {d:.3g} e/px{dose_note} is outside the training range {lo:g}-{hi:g} "
                   "e/px")
    trained_pm = sim.get("pixel_size_pm")
    sizes = pixel_size_pm if isinstance(pixel_size_pm, tuple) else (pixel_size_pm,)
    if trained_pm and all(sizes):
        pm = max((float(p) for p in sizes if p), key=lambda p: abs(math.log(p / trained_pm)))
        ratio = pm / trained_pm
        if not 1 / pixel_tolerance <= ratio <= pixel_tolerance:
            shown = f"{pm:.4g} pm" if pm < 1000 else f"{pm / 1000:.4g} nm"
            head = f"pixel size {shown} is {ratio:.3g}x the training pixel size {trained_pm:.4g} pm"
            if ratio < 1:
                out.append(f"{head} and was denoised on its own grid (--resample denoises it at "
                           "the model's, measured better at low doses but not at high ones; or "
                           f"train with --set data.simulator.pixel_size_pm={pm:.4g})")
            else:
                out.append(f"{head}: columns are narrower and closer in pixels than the model "
                           "learnt (train at this pixel size: mcnn-train CONFIG --pixel-size "
                           f"{pm:.4g}pm; upsampling with --resample was measured to invent "
                           "atoms)")
    return out


def is_stem_training(training_data: dict[str, Any] | None) -> bool:
    """True when a checkpoint's training data (``Predictor.training_data``) is the STEM simulator:
    its inputs must then be brought into model units (:func:`frame_to_model_units`)."""
    sim = (training_data or {}).get("simulator") or {}
    return sim.get("name") == "stem"


def pixel_size_pm(pixel_size: Any) -> float | None:
    """The x size of a :class:`~mcnn.data.image_io.PixelSize` in pm (None: unknown or no length)."""
    if pixel_size is None:
        return None
    try:
        return float(pixel_size.to("pm").x)
    except ValueError:
        return None


def pixel_size_pm_yx(pixel_size: Any) -> tuple[float, float] | None:
    """Both sizes of a :class:`~mcnn.data.image_io.PixelSize` in pm (None: unknown or no length)."""
    if pixel_size_pm(pixel_size) is None:
        return None
    p = pixel_size.to("pm")
    return float(p.y), float(p.x)


def frame_to_model_units(
    raw: np.ndarray,
    *,
    pixel_size: Any = None,
    training_data: dict[str, Any] | None = None,
    calibration: NoiseCalibration | None = None,
    dose_e_per_px: float | None = None,
    resampling: FrameResampling | None = None,
) -> tuple[np.ndarray, FrameUnits, list[str]]:
    """One ``(H, W)`` frame as stored (counts) -> ``(model input float32, its units, warnings)``.

    The one path every command takes (stem-denoise, mcnn-predict, stem-view): offset, gain and
    dose from ``calibration``/``dose_e_per_px`` or the frame, the input in model units, and why the
    frame may be far from the training data (dose, ``pixel_size`` against the checkpoint's).
    Invert the model's output with :func:`from_model_units` and the returned units.

    With ``resampling`` (:class:`~mcnn.stem.resample.FrameResampling`), the electrons are moved
    onto the model's grid (electrons per unit area kept) before dividing by the dose, and the
    returned input and units are that grid's: offset and gain are the detector's (estimated on
    the frame as recorded, where its noise is), the dose is per model pixel (a given
    ``dose_e_per_px``, per input pixel, is scaled by the area ratio), and the pixel size checked
    is the model grid's. Pass the same ``resampling`` to :func:`from_model_units`.
    """
    units = frame_units(raw, calibration=calibration, dose_e_per_px=dose_e_per_px)
    if resampling is None:
        warnings = units_warnings(units) + training_warnings(units, pixel_size_pm_yx(pixel_size),
                                                             training_data)
        return to_model_units(raw, units), units, warnings
    electrons = resampling.electrons_to_model(to_electrons(raw, units))
    if units.dose_from == "given":
        dose = units.dose_e_per_px * resampling.electrons_scale
    else:
        dose = float(np.mean(electrons))
        if not dose > 0:
            raise ValueError(f"mean of {dose:.6g} e/px after resampling: not a dose")
    units = replace(units, dose_e_per_px=float(dose))
    grid_pm = resampling.pixel_size_model_grid_pm_yx
    per_input = units.dose_e_per_px / resampling.electrons_scale
    note = f" per {grid_pm[1]:.3g} pm model pixel ({per_input:.3g} per input pixel)"
    warnings = units_warnings(units) + training_warnings(units, grid_pm, training_data,
                                                         dose_note=note)
    return (electrons / units.dose_e_per_px).astype(np.float32), units, warnings

"""Is a model being used on the physics it was trained for? Compare a series with the training data
config a model file carries (``mcnn.weights.read_training_data``).

A network trained for 532 nm light, 1 um pixels and +-50 um planes learned that mapping and no
other; on a series recorded at other values it returns a confident, wrong phase. So a mismatch
beyond ``tolerance`` (relative, default 1%) is refused in one line naming each value, unless the
user allows it; pixel-size mismatches can instead be resampled. Planes are matched by distance,
so a model for +-z can run on a longer series that contains +-z (in the model's channel order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcnn.phase.series import PhaseSeries


class PhysicsMismatch(ValueError):
    """The series was recorded with other physics than the model was trained on."""


@dataclass(frozen=True)
class ModelPhysics:
    wavelength_um: float
    pixel_size_um: float
    defocus_um: tuple[float, ...]
    medium_index: float = 1.0

    @classmethod
    def from_training_data(cls, data: dict[str, Any] | None) -> ModelPhysics | None:
        """The physics of a model trained on simulated defocus series; None for other models."""
        sim = (data or {}).get("simulator") or {}
        if sim.get("name") != "defocus":
            return None
        return cls(float(sim["wavelength_um"]), float(sim["pixel_size_um"]),
                   tuple(float(z) for z in sim["defocus_um"]), float(sim.get("medium_index", 1.0)))


def _relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def _match_planes(series_z: tuple[float, ...], model_z: tuple[float, ...],
                  tolerance: float) -> list[int] | None:
    """Series plane index for each model plane (within ``tolerance`` of the largest distance)."""
    scale = max(max(abs(z) for z in model_z), 1e-9)
    chosen: list[int] = []
    for z in model_z:
        candidates = [i for i, s in enumerate(series_z)
                      if abs(s - z) <= tolerance * scale and i not in chosen]
        if not candidates:
            return None
        chosen.append(min(candidates, key=lambda i: abs(series_z[i] - z)))
    return chosen


def physics_mismatches(model: ModelPhysics, series: PhaseSeries,
                       tolerance: float = 0.01) -> list[str]:
    """One phrase per value that differs by more than ``tolerance`` (relative)."""
    out = []
    for name in ("wavelength_um", "pixel_size_um", "medium_index"):
        s, m = getattr(series, name), getattr(model, name)
        if _relative(s, m) > tolerance:
            out.append(f"{name} {s:g} (model {m:g}, {100 * (s - m) / m:+.1f}%)")
    if _match_planes(series.defocus_um, model.defocus_um, tolerance) is None:
        out.append(f"defocus_um {list(series.defocus_um)} (model {list(model.defocus_um)})")
    return out


def match_series_to_model(
    series: PhaseSeries,
    training_data: dict[str, Any] | None,
    *,
    tolerance: float = 0.01,
    allow_mismatch: bool = False,
    resample: bool = False,
) -> tuple[PhaseSeries, list[str]]:
    """The series made ready for the model: pixels resampled when asked, planes picked and ordered
    as the model's input channels. Returns ``(series, mismatches accepted)``; raises
    ``PhysicsMismatch`` (one line) when the physics differ and ``allow_mismatch`` is False."""
    model = ModelPhysics.from_training_data(training_data)
    if model is None:
        if not allow_mismatch:
            raise PhysicsMismatch(
                "the model file does not record a defocus-series physics (wavelength, pixel size, "
                "distances); use --allow-mismatch to run it anyway")
        return series, ["model physics unknown"]
    if resample and _relative(series.pixel_size_um, model.pixel_size_um) > tolerance:
        series = series.resampled(model.pixel_size_um)
    problems = physics_mismatches(model, series, tolerance)
    if problems and not allow_mismatch:
        hint = "" if resample else ", or --resample for the pixel size"
        raise PhysicsMismatch(
            f"{series.source}: recorded with other physics than the model was trained for: "
            f"{'; '.join(problems)} (tolerance {100 * tolerance:g}%); use --allow-mismatch to "
            f"run it anyway{hint}")
    picked = _match_planes(series.defocus_um, model.defocus_um, tolerance)
    if picked is None:  # allowed mismatch: nearest planes, or the series as it is
        n = len(model.defocus_um)
        if len(series.defocus_um) < n:
            raise PhysicsMismatch(f"{series.source}: {len(series.defocus_um)} planes but the "
                                  f"model takes {n} ({list(model.defocus_um)})")
        picked = _match_planes(series.defocus_um, model.defocus_um, float("inf"))
        assert picked is not None
    return series.planes(picked), problems

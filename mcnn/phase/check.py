"""Is a model being used on the physics it was trained for? Compare a series with the training data
config a model file carries (``mcnn.weights.read_training_data``).

A network trained for 532 nm light, 1 um pixels and +-50 um planes learned that mapping and no
other; on a series recorded at other values it returns a confident, wrong phase. So a mismatch
beyond ``tolerance`` (relative, default 1%) is refused in one line naming each value, unless the
user allows it, or resampled when asked. Planes are matched by distance, so a model for +-z can
run on a longer series that contains +-z (in the model's channel order).

Resampling uses the Fresnel scaling law: in paraxial propagation the intensity pattern depends on
lateral lengths ``x`` and the reduced distance ``zeta = lambda z / n`` only through ``x^2 / zeta``,
so a series whose reduced distances are all ``r`` times the model's is the model's series with
every lateral length scaled by ``sqrt(r)``. Its pixel size is reinterpreted as ``p sqrt(r)``, the
wavelength, index and distances as the model's, and the pixels are resampled to the model's
pixel size (the phase, dimensionless, is unchanged; outputs go back to the series grid). Exact
under the Fresnel approximation; partial-coherence damping is not rescaled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
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


def _reduced(z: float, wavelength_um: float, medium_index: float) -> float:
    return z * wavelength_um / medium_index


def fresnel_scaled(series: PhaseSeries, model: ModelPhysics, tolerance: float = 0.01
                   ) -> PhaseSeries:
    """The series re-expressed in the model's wavelength, index and distances by Fresnel scaling
    (module doc), when its reduced distances are one common multiple ``r`` of the model's; the
    series unchanged when they already match or no common multiple exists (then the mismatch is
    reported as usual)."""
    if _match_planes(series.defocus_um, model.defocus_um, tolerance) is not None and all(
            _relative(getattr(series, n), getattr(model, n)) <= tolerance
            for n in ("wavelength_um", "medium_index")):
        return series
    ref = max(model.defocus_um, key=abs)
    if ref == 0:
        return series
    zeta_model = _reduced(ref, model.wavelength_um, model.medium_index)
    best: tuple[float, list[int]] | None = None
    for z in series.defocus_um:
        zeta = _reduced(z, series.wavelength_um, series.medium_index)
        if zeta == 0 or (zeta > 0) != (zeta_model > 0):
            continue
        r = zeta_model / zeta  # series reduced distances x r = the model's
        scaled = tuple(_reduced(v, series.wavelength_um, series.medium_index) * r
                       * model.medium_index / model.wavelength_um for v in series.defocus_um)
        picked = _match_planes(scaled, model.defocus_um, tolerance)
        if picked is not None and (best is None or abs(math.log(r)) < abs(math.log(best[0]))):
            best = (r, picked)
    if best is None:
        return series
    r, picked = best
    chosen = series.planes(picked)
    return replace(chosen, defocus_um=tuple(model.defocus_um), wavelength_um=model.wavelength_um,
                   medium_index=model.medium_index,
                   pixel_size_um=series.pixel_size_um * math.sqrt(r),
                   meta={**series.meta, "fresnel_scale": math.sqrt(r)})


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
    if resample:
        series = fresnel_scaled(series, model, tolerance)
        if _relative(series.pixel_size_um, model.pixel_size_um) > tolerance:
            series = series.resampled(model.pixel_size_um)
    problems = physics_mismatches(model, series, tolerance)
    if problems and not allow_mismatch:
        hint = "" if resample else (", or --resample (pixel size; wavelength, index and "
                                    "distances by Fresnel scaling)")
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

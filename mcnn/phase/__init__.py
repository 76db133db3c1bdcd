"""Phase retrieval from real through-focus series: classical baselines, series loading, checks.

One signature for every reconstruction method (``mcnn.phase.baselines``)::

    method(intensities (N, H, W), defocus_um (N,), wavelength_um, pixel_size_um, **options)
        -> phase (H, W) float32, radians, mean 0

Names load on first use, so ``import mcnn.phase`` pulls in neither torch code nor file readers.
"""

from __future__ import annotations

from mcnn.utils.lazy import lazy_exports

_HOMES = {
    "BASELINES": "baselines",
    "fft_tie": "tie",
    "multiplane_tie": "tie",
    "solve_tie": "tie",
    "gerchberg_saxton": "gs",
    "phase_rmse": "metrics",
    "phase_ssim": "metrics",
    "PhaseSeries": "series",
    "SeriesManifest": "series",
    "load_series": "series",
    "PhysicsMismatch": "check",
    "match_series_to_model": "check",
    "physics_mismatches": "check",
}

__all__ = sorted(_HOMES)

__getattr__, __dir__ = lazy_exports("mcnn.phase", _HOMES, globals())

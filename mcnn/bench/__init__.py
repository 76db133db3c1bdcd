"""Benchmarks: convergence of MCNN against the plain U-Net, training step cost of the side outputs,
inference and streaming speed, the denoiser against a parameter-matched pix2pix U-Net, phase
retrieval against classical baselines, and STEM denoising against oracle Gaussian/BM3D filters.
Library code only (results as dicts); ``mcnn-bench`` is the command line.

Names load on first use, so ``import mcnn.bench`` pulls in none of the benchmarks (nor the trainer
or simulators they drive) until one is asked for.
"""

from __future__ import annotations

from mcnn.utils.lazy import lazy_exports

_HOMES = {
    "SCALES": "convergence",
    "VARIANTS": "convergence",
    "ConvergenceSettings": "convergence",
    "run_convergence": "convergence",
    "settings_for": "convergence",
    "trunk_state": "convergence",
    "DenoiserVsUnetSettings": "denoiser_vs_unet",
    "run_denoiser_vs_unet": "denoiser_vs_unet",
    "MODEL_PRESETS": "presets",
    "load_model_config": "presets",
    "model_preset": "presets",
    "run_speed_bench": "speed",
    "compare_training_steps": "step_time",
    "training_step_ms": "step_time",
    "STREAM_MODES": "streaming",
    "run_streaming_bench": "streaming",
    "seconds_to_reach": "summary",
    "smooth_median": "summary",
    "spread": "summary",
    "steps_to_reach": "summary",
    "summarize_curves": "summary",
    "time_calls": "timing",
    "time_interleaved": "timing",
    "time_stats": "timing",
    "PhaseBenchSettings": "phase",
    "run_phase_bench": "phase",
    "StemBenchSettings": "stem",
    "StemBenchResult": "stem",
    "run_stem_bench": "stem",
}

__all__ = sorted(_HOMES)

__getattr__, __dir__ = lazy_exports("mcnn.bench", _HOMES, globals())

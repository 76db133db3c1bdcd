"""Benchmarks: convergence of MCNN against the plain U-Net, training step cost of the side outputs,
inference speed, and the denoiser against a parameter-matched pix2pix U-Net. Library code only
(results as dicts); ``mcnn-bench`` is the command line."""

from mcnn.bench.convergence import (
    SCALES,
    VARIANTS,
    ConvergenceSettings,
    run_convergence,
    settings_for,
    trunk_state,
)
from mcnn.bench.denoiser_vs_unet import DenoiserVsUnetSettings, run_denoiser_vs_unet
from mcnn.bench.presets import MODEL_PRESETS, load_model_config, model_preset
from mcnn.bench.speed import run_speed_bench
from mcnn.bench.step_time import compare_training_steps, training_step_ms
from mcnn.bench.streaming import STREAM_MODES, run_streaming_bench
from mcnn.bench.summary import (
    seconds_to_reach,
    smooth_median,
    spread,
    steps_to_reach,
    summarize_curves,
)
from mcnn.bench.timing import time_calls, time_interleaved, time_stats

__all__ = [
    "MODEL_PRESETS",
    "SCALES",
    "VARIANTS",
    "ConvergenceSettings",
    "DenoiserVsUnetSettings",
    "compare_training_steps",
    "load_model_config",
    "model_preset",
    "run_convergence",
    "run_denoiser_vs_unet",
    "run_speed_bench",
    "run_streaming_bench",
    "STREAM_MODES",
    "seconds_to_reach",
    "settings_for",
    "smooth_median",
    "spread",
    "steps_to_reach",
    "summarize_curves",
    "time_calls",
    "time_interleaved",
    "time_stats",
    "training_step_ms",
    "trunk_state",
]

"""Benchmarks: convergence of MCNN against the plain U-Net, training step cost of the side outputs,
and inference speed. Library code only (results as dicts); ``mcnn-bench`` is the command line."""

from mcnn.bench.convergence import (
    SCALES,
    VARIANTS,
    ConvergenceSettings,
    run_convergence,
    settings_for,
)
from mcnn.bench.presets import MODEL_PRESETS, load_model_config, model_preset
from mcnn.bench.speed import run_speed_bench
from mcnn.bench.step_time import training_step_ms
from mcnn.bench.summary import seconds_to_reach, spread, steps_to_reach, summarize_curves

__all__ = [
    "MODEL_PRESETS",
    "SCALES",
    "VARIANTS",
    "ConvergenceSettings",
    "load_model_config",
    "model_preset",
    "run_convergence",
    "run_speed_bench",
    "seconds_to_reach",
    "settings_for",
    "spread",
    "steps_to_reach",
    "summarize_curves",
    "training_step_ms",
]

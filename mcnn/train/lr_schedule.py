"""The learning-rate schedule as a multiplier of ``optim.lr``, a pure function of the step, so
a resumed or extended run recomputes it exactly."""

from __future__ import annotations

import math

from mcnn.train.config import TrainConfig


def lr_factor(cfg: TrainConfig, step: int, horizon: int) -> float:
    """The learning-rate multiplier after ``step`` steps of a schedule that spans ``horizon`` steps.

    Past the horizon (an extended run) cosine holds its final value and step decay keeps its period.
    """
    o = cfg.optim
    if o.warmup_steps and step < o.warmup_steps:
        return (step + 1) / o.warmup_steps
    if o.schedule == "cosine":
        t = (step - o.warmup_steps) / max(horizon - o.warmup_steps, 1)
        return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1)))
    if o.schedule == "step":
        return o.step_gamma ** ((step - o.warmup_steps) // o.step_every)
    return 1.0

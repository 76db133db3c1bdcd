"""The convergence summary's arithmetic on hand-made curves: reach, value-at-step, spread."""

import math

import pytest

from mcnn.bench.summary import (
    late_mean,
    seconds_to_reach,
    spread,
    steps_to_reach,
    summarize_curves,
    value_at,
)

STEPS = [25, 50, 75, 100]
VALUES = [0.20, 0.12, 0.08, 0.09]
SECONDS = [1.0, 2.0, 3.0, 4.0]


def test_steps_and_seconds_to_reach_take_the_first_validation_at_or_below_the_level():
    assert steps_to_reach(STEPS, VALUES, 0.12) == 50  # equal counts as reached
    assert steps_to_reach(STEPS, VALUES, 0.085) == 75
    assert seconds_to_reach(STEPS, VALUES, SECONDS, 0.085) == 3.0
    assert steps_to_reach(STEPS, VALUES, 0.05) is None
    assert seconds_to_reach(STEPS, VALUES, SECONDS, 0.05) is None


def test_nan_from_a_diverged_run_never_counts_as_reaching():
    assert steps_to_reach([1, 2, 3], [0.3, math.nan, 0.05], 0.1) == 3
    assert steps_to_reach([1, 2], [math.nan, math.nan], 1.0) is None


def test_value_at_uses_the_last_validation_not_after_the_step():
    assert value_at(STEPS, VALUES, 100) == 0.09
    assert value_at(STEPS, VALUES, 60) == 0.12
    assert value_at(STEPS, VALUES, 10) is None


def test_late_mean_averages_the_last_quarter_of_the_run():
    assert late_mean(STEPS, VALUES) == pytest.approx((0.08 + 0.09) / 2)  # steps >= 75
    steps = [10, 20, 30, 40, 50, 60, 70, 80]
    assert late_mean(steps, [9, 9, 9, 9, 9, 5, 1, 3]) == 3.0  # steps >= 60
    assert math.isnan(late_mean([1, 2], [0.1, math.nan]))


def test_spread_counts_never_reached_as_infinite_in_the_median():
    assert spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3, "n_finite": 3}
    s = spread([100, None, 300])  # median of (100, 300, inf) = 300
    assert s["median"] == 300 and s["min"] == 100 and s["n_finite"] == 2
    assert spread([None, None, 5])["median"] is None
    assert spread([math.nan, 0.1, 0.2])["median"] == 0.2


def _rows(variant, skip, seed, values, dt=1.0):
    return [{"variant": variant, "skip": skip, "seed": seed, "step": s, "val_mae": v,
             "train_time_s": dt * (i + 1)} for i, (s, v) in enumerate(zip(STEPS, values, strict=True))]


def test_summary_reports_checkpoints_levels_and_the_unet_final_level():
    rows = (_rows("unet", "add", 0, [0.2, 0.15, 0.12, 0.11])
            + _rows("unet", "add", 1, [0.2, 0.16, 0.13, 0.13])
            + _rows("mcnn-equal", "add", 0, [0.18, 0.10, 0.07, 0.06], dt=1.5)
            + _rows("mcnn-equal", "add", 1, [0.19, 0.12, 0.09, 0.065], dt=1.5))
    out = summarize_curves(rows, checkpoints=(50, 500), levels=(0.1, 0.07))
    unet, mcnn = out["add"]["unet"], out["add"]["mcnn-equal"]
    assert list(unet["mae_at_step"]) == ["50", "100"]  # 500 not reached; the last step added
    assert unet["mae_at_step"]["50"]["median"] == pytest.approx(0.155)
    assert unet["final_mae"] == {"median": 0.12, "min": 0.11, "max": 0.13, "n": 2, "n_finite": 2}
    # the U-Net's median final MAE (0.12) is the comparison level
    assert mcnn["reach"]["unet_final"]["mae"] == 0.12
    assert mcnn["reach"]["unet_final"]["steps"]["median"] == 50
    assert mcnn["reach"]["unet_final"]["seconds"]["median"] == 3.0
    assert mcnn["reach"]["0.07"]["steps"] == {"median": 87.5, "min": 75, "max": 100, "n": 2,
                                              "n_finite": 2}
    assert unet["reach"]["0.1"]["steps"]["median"] is None
    assert unet["reach"]["0.1"]["steps"]["n_finite"] == 0

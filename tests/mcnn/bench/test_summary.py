"""The convergence summary's arithmetic on hand-made curves: smoothing, reach, value-at-step,
spread (median, IQR, min-max) and the ratios to the baseline."""

import math

import numpy as np
import pytest

from mcnn.bench.summary import (
    late_mean,
    quantile,
    seconds_to_reach,
    smooth_median,
    spread,
    steps_to_reach,
    summarize_curves,
    value_at,
)

STEPS = [25, 50, 75, 100]
VALUES = [0.20, 0.12, 0.08, 0.09]
SECONDS = [1.0, 2.0, 3.0, 4.0]

# a curve with one lucky dip at step 50 that the smoothed curve must not count
DIP_STEPS = [25, 50, 75, 100, 125, 150]
DIP_VALUES = [0.20, 0.09, 0.15, 0.12, 0.08, 0.07]
DIP_SECONDS = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_steps_and_seconds_to_reach_take_the_first_validation_at_or_below_the_level():
    assert steps_to_reach(STEPS, VALUES, 0.12) == 50  # equal counts as reached
    assert steps_to_reach(STEPS, VALUES, 0.085) == 75
    assert seconds_to_reach(STEPS, VALUES, SECONDS, 0.085) == 3.0
    assert steps_to_reach(STEPS, VALUES, 0.05) is None
    assert seconds_to_reach(STEPS, VALUES, SECONDS, 0.05) is None


def test_centred_moving_median_truncates_its_window_at_the_ends():
    assert smooth_median(DIP_VALUES, 3) == pytest.approx([0.145, 0.15, 0.12, 0.12, 0.08, 0.075])
    assert smooth_median(DIP_VALUES, 5) == pytest.approx([0.15, 0.135, 0.12, 0.09, 0.10, 0.08])
    assert smooth_median(DIP_VALUES, 1) == DIP_VALUES
    with pytest.raises(ValueError, match="odd"):
        smooth_median(DIP_VALUES, 4)


def test_a_single_lucky_dip_does_not_count_as_reaching_on_the_smoothed_curve():
    assert steps_to_reach(DIP_STEPS, DIP_VALUES, 0.1) == 50  # raw: the dip
    assert steps_to_reach(DIP_STEPS, DIP_VALUES, 0.1, smooth=3) == 125
    assert seconds_to_reach(DIP_STEPS, DIP_VALUES, DIP_SECONDS, 0.1, smooth=3) == 5.0
    assert steps_to_reach(DIP_STEPS, DIP_VALUES, 0.1, smooth=5) == 100  # median(.09,.15,.12,.08,.07)


def test_nan_from_a_diverged_run_never_counts_as_reaching():
    assert steps_to_reach([1, 2, 3], [0.3, math.nan, 0.05], 0.1) == 3
    assert steps_to_reach([1, 2], [math.nan, math.nan], 1.0) is None
    # inside a smoothing window NaN ranks as +inf: it can delay a reach, never cause one
    assert smooth_median([0.1, math.nan, 0.1], 3) == [math.inf, 0.1, math.inf]
    assert steps_to_reach([1, 2, 3], [0.05, math.nan, 0.05], 0.1, smooth=3) == 2


def test_value_at_uses_the_last_validation_not_after_the_step():
    assert value_at(STEPS, VALUES, 100) == 0.09
    assert value_at(STEPS, VALUES, 60) == 0.12
    assert value_at(STEPS, VALUES, 10) is None


def test_late_mean_averages_the_last_quarter_of_the_run():
    assert late_mean(STEPS, VALUES) == pytest.approx((0.08 + 0.09) / 2)  # steps >= 75
    steps = [10, 20, 30, 40, 50, 60, 70, 80]
    assert late_mean(steps, [9, 9, 9, 9, 9, 5, 1, 3]) == 3.0  # steps >= 60
    assert math.isnan(late_mean([1, 2], [0.1, math.nan]))


@pytest.mark.parametrize("xs", [[3.0], [1.0, 4.0], [5.0, 1.0, 2.0, 4.0], [7, 1, 3, 9, 2, 8, 4]])
@pytest.mark.parametrize("q", [0.1, 0.25, 0.5, 0.75, 0.9])
def test_quantile_matches_numpys_linear_interpolation(xs, q):
    assert quantile(sorted(xs), q) == pytest.approx(float(np.quantile(xs, q)))


def test_spread_reports_median_iqr_and_range():
    assert spread([3.0, 1.0, 2.0]) == {"median": 2.0, "q25": 1.5, "q75": 2.5, "min": 1.0,
                                       "max": 3.0, "n": 3, "n_finite": 3}
    s = spread([1, 2, 3, 4, 5])
    assert (s["q25"], s["median"], s["q75"]) == (2, 3, 4)
    s = spread([4, 1, 3, 2])
    assert (s["q25"], s["median"], s["q75"]) == (1.75, 2.5, 3.25)


def test_spread_counts_never_reached_as_infinite_in_the_quantiles():
    s = spread([100, None, 300])  # median of (100, 300, inf) = 300
    assert s["median"] == 300 and s["min"] == 100 and s["max"] == 300 and s["n_finite"] == 2
    assert s["q25"] == 200 and s["q75"] is None  # q75 falls between 300 and inf
    s = spread([100, None, 300, 200])  # (100, 200, 300, inf)
    assert (s["q25"], s["median"], s["q75"]) == (175, 250, None)
    assert spread([None, None, 5])["median"] is None
    assert spread([math.nan, 0.1, 0.2])["median"] == 0.2


def _rows(variant, skip, seed, values, dt=1.0, steps=STEPS):
    return [{"variant": variant, "skip": skip, "seed": seed, "step": s, "val_mae": v,
             "train_time_s": dt * (i + 1)} for i, (s, v) in enumerate(zip(steps, values, strict=True))]


def test_summary_reports_checkpoints_levels_and_the_unet_final_level():
    rows = (_rows("unet", "add", 0, [0.2, 0.15, 0.12, 0.11])
            + _rows("unet", "add", 1, [0.2, 0.16, 0.13, 0.13])
            + _rows("mcnn-equal", "add", 0, [0.18, 0.10, 0.07, 0.06], dt=1.5)
            + _rows("mcnn-equal", "add", 1, [0.19, 0.12, 0.09, 0.065], dt=1.5))
    out = summarize_curves(rows, checkpoints=(50, 500), levels=(0.1, 0.07), smooth=1)
    unet, mcnn = out["add"]["unet"], out["add"]["mcnn-equal"]
    assert list(unet["mae_at_step"]) == ["50", "100"]  # 500 not reached; the last step added
    assert unet["mae_at_step"]["50"]["median"] == pytest.approx(0.155)
    assert unet["final_mae"] == {"median": 0.12, "q25": 0.115, "q75": 0.125, "min": 0.11,
                                 "max": 0.13, "n": 2, "n_finite": 2}
    # the U-Net's median final MAE (0.12) is the comparison level
    assert mcnn["reach"]["unet_final"]["mae"] == 0.12
    assert mcnn["reach"]["unet_final"]["steps"]["median"] == 50
    assert mcnn["reach"]["unet_final"]["seconds"]["median"] == 3.0
    assert mcnn["reach"]["0.07"]["steps"] == {"median": 87.5, "q25": 81.25, "q75": 93.75,
                                              "min": 75, "max": 100, "n": 2, "n_finite": 2}
    assert unet["reach"]["0.1"]["steps"]["median"] is None
    assert unet["reach"]["0.1"]["steps"]["n_finite"] == 0
    # one U-Net seed never reaches the U-Net's median final MAE: its median is (75, inf) -> None
    assert unet["reach"]["unet_final"]["steps"] == {"median": None, "q25": None, "q75": None,
                                                    "min": 75, "max": 75, "n": 2, "n_finite": 1}
    # ratios of medians to the baseline, None where the baseline's median is None
    assert mcnn["vs_baseline"]["final_mae"] == pytest.approx(0.0625 / 0.12, abs=1e-4)
    assert mcnn["vs_baseline"]["late_mae"] == pytest.approx(
        ((0.07 + 0.06) / 2 + (0.09 + 0.065) / 2) / 2 / (((0.12 + 0.11) / 2 + 0.13) / 2), abs=1e-4)
    assert mcnn["vs_baseline"]["reach"]["unet_final"]["steps"] is None
    assert mcnn["vs_baseline"]["reach"]["0.1"]["steps"] is None  # the unet never got there
    assert "vs_baseline" not in unet


def test_summary_reads_reach_off_the_smoothed_curves():
    rows = (_rows("unet", "add", 0, DIP_VALUES, steps=DIP_STEPS)
            + _rows("unet", "add", 1, [0.2, 0.15, 0.11, 0.095, 0.09, 0.08], steps=DIP_STEPS))
    raw = summarize_curves(rows, checkpoints=(), levels=(0.1,), smooth=1)["add"]["unet"]
    smooth = summarize_curves(rows, checkpoints=(), levels=(0.1,), smooth=3)["add"]["unet"]
    assert raw["reach"]["0.1"]["steps"]["median"] == (50 + 100) / 2
    # smoothed (k=3): seed 0 -> 125 (see above); seed 1 -> medians .175,.15,.11,.095,.09,.085: 100
    assert smooth["reach"]["0.1"]["steps"] == {"median": 112.5, "q25": 106.25, "q75": 118.75,
                                               "min": 100, "max": 125, "n": 2, "n_finite": 2}
    assert smooth["reach"]["0.1"]["seconds"]["median"] == 4.5
    # checkpoints stay raw
    assert smooth["mae_at_step"] == raw["mae_at_step"]
    # a variant that gets there (smoothed) at 50 on both seeds: 50 / 112.5 of the U-Net's its
    fast = [0.2, 0.09, 0.08, 0.07, 0.07, 0.06]
    rows += (_rows("mcnn-equal", "add", 0, fast, steps=DIP_STEPS, dt=2.0)
             + _rows("mcnn-equal", "add", 1, fast, steps=DIP_STEPS, dt=2.0))
    mcnn = summarize_curves(rows, checkpoints=(), levels=(0.1,), smooth=3)["add"]["mcnn-equal"]
    assert mcnn["reach"]["0.1"]["steps"]["median"] == 50
    assert mcnn["reach"]["0.1"]["seconds"]["median"] == 4.0
    assert mcnn["vs_baseline"]["reach"]["0.1"] == {"steps": round(50 / 112.5, 4),
                                                   "seconds": round(4.0 / 4.5, 4)}

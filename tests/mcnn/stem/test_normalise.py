"""Counts -> model units (offset and gain removed, divided by the dose) and back."""

from __future__ import annotations

import numpy as np
import pytest

from mcnn.stem.calibration import NoiseCalibration
from mcnn.stem.normalise import (
    UNKNOWN_DOSE,
    FrameUnits,
    check_frame_shape,
    dose_label,
    frame_to_model_units,
    frame_units,
    from_model_units,
    to_model_units,
    training_warnings,
)

CAL = NoiseCalibration(gain_counts_per_e=8.0, offset_counts=4000.0)
STEM_TRAINING = {"simulator": {"name": "stem", "dose_e_per_px_range": [1.0, 10.0],
                               "pixel_size_pm": 20.0}}


def test_offset_is_removed_before_dividing_by_the_dose():
    rng = np.random.default_rng(0)
    clean = 1 + 0.5 * np.sin(np.arange(64) / 3)[None, :] * np.ones((64, 1))
    raw = CAL.offset_counts + CAL.gain_counts_per_e * rng.poisson(5.0 * clean)
    units = frame_units(raw, calibration=CAL)
    assert units.dose_e_per_px == pytest.approx(5.0 * clean.mean(), rel=0.02)
    x = to_model_units(raw, units)
    assert x.mean() == pytest.approx(1.0, rel=1e-5)
    # contrast kept: the same as clean's (raw / raw.mean() would shrink it ~100x)
    assert x.std() == pytest.approx(np.sqrt(clean.var() + 1 / 5.0), rel=0.1)
    assert (raw / raw.mean()).std() < x.std() / 50
    np.testing.assert_allclose(from_model_units(x, units), raw, rtol=1e-5)
    np.testing.assert_allclose(from_model_units(x, units, "electrons"), (raw - 4000) / 8,
                               rtol=1e-4, atol=1e-3)


def test_dose_given_on_the_command_line_wins():
    raw = np.full((8, 8), 4000.0 + 8 * 3)
    units = frame_units(raw, calibration=CAL, dose_e_per_px=6.0)
    assert units.dose_from == "given" and to_model_units(raw, units).mean() == pytest.approx(0.5)


def test_offset_and_gain_estimated_without_calibration():
    rng = np.random.default_rng(1)
    xx = np.mgrid[0:128, 0:128][1] / 127.0
    raw = 3000 + 5.0 * rng.poisson(4.0 * (0.3 + 1.4 * xx))
    units = frame_units(raw)
    assert units.source.startswith("estimated from the frame (offset from ")
    assert units.gain_counts_per_e == pytest.approx(5.0, rel=0.1)
    assert units.dose_e_per_px == pytest.approx(4.0, rel=0.15)


def test_calibration_that_does_not_fit_is_one_line():
    with pytest.raises(ValueError, match="not above the offset"):
        frame_units(np.full((8, 8), 100.0), calibration=CAL)


def test_warns_when_far_from_training():
    data = {"simulator": {"name": "stem", "dose_e_per_px_range": [1.0, 10.0],
                          "pixel_size_pm": 20.0}}
    units = FrameUnits(0.0, 1.0, 100.0, "calibration", "frame mean")
    w = training_warnings(units, 60.0, data)
    assert len(w) == 2 and "dose 100" in w[0] and "3x the training pixel size" in w[1]
    assert training_warnings(FrameUnits(0, 1, 5.0, "c", "g"), 25.0, data) == []


def test_frames_that_are_not_counts_are_shifted_with_a_warning_and_no_dose():
    raw = np.linspace(-50.0, 30.0, 64 * 64).reshape(64, 64)  # dark-subtracted, mean < 0
    units = frame_units(raw)
    assert units.source.startswith("assumed") and units.offset_counts == -50.0
    assert to_model_units(raw, units).mean() == pytest.approx(1.0)
    _, units, warnings = frame_to_model_units(raw, training_data=STEM_TRAINING)
    assert units.dose_from == UNKNOWN_DOSE and dose_label(units).startswith("dose unknown")
    assert any("not raw detector counts" in w for w in warnings)
    # the "dose" here is a mean of uncalibrated values: no dose-range warning from it
    assert not any("training range" in w for w in warnings)


def test_an_estimated_calibration_is_one_fixed_warning_and_a_calibration_none():
    ramp = np.linspace(0.2, 2.0, 96)[None, :] * np.ones((96, 1))  # brightness range to fit
    raw = np.random.default_rng(3).poisson(4.0 * ramp) * 3.0 + 100.0
    _, units, warnings = frame_to_model_units(raw)
    assert units.source.startswith("estimated") and dose_label(units).startswith("dose ")
    assert len(warnings) == 1 and warnings[0].startswith("no noise calibration:")
    matching = NoiseCalibration(gain_counts_per_e=3.0, offset_counts=100.0)
    _, units, warnings = frame_to_model_units(raw, calibration=matching)
    assert units.source == "calibration" and warnings == []


@pytest.mark.parametrize("dose", [0.0, -3.0, float("inf"), float("nan")])
def test_a_given_dose_must_be_finite_and_positive(dose):
    with pytest.raises(ValueError, match="finite number > 0"):
        frame_units(np.full((32, 32), 5.0), calibration=CAL, dose_e_per_px=dose)


@pytest.mark.parametrize("shape", [(1, 256), (8, 8), (15, 64), (4, 16, 16)])
def test_frames_smaller_than_a_stem_image_are_refused(shape):
    with pytest.raises(ValueError, match=r"^f\.tif: frame of .* px; a STEM frame needs at least "):
        check_frame_shape(shape, "f.tif")
    check_frame_shape((16, 64), "f.tif")  # the smallest accepted


def test_uncalibrated_counts_with_a_given_dose_do_not_say_the_dose_is_unknown():
    flat = np.random.default_rng(1).poisson(4.0, (64, 64)).astype(float)  # no offset to fit
    _, units, warnings = frame_to_model_units(flat, dose_e_per_px=4.0)
    assert units.source.startswith("assumed") and units.dose_from == "given"
    assert dose_label(units) == "dose 4 e/px"
    assert len(warnings) == 1 and "the dose given is used" in warnings[0]
    assert "unknown" not in warnings[0]

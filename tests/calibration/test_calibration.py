"""Calibration recovers the simulated rig's known latency, door region and exposure drift."""

from __future__ import annotations

import numpy as np
import pytest

from acquire.config import SimRigConfig
from acquire.sources.screen import VirtualScreen
from acquire.sources.sim import SimulatedRig
from calibration.procedures import measure_exposure, measure_latency, measure_roi
from calibration.signals import correlation_map, responsive_box, step_latencies
from mcnn.data.recording import CalibrationResult, LatencyCalibration


def test_step_latencies_interpolate_the_half_way_crossing():
    times = np.arange(0, 2, 0.1)
    levels = np.where(times >= 0.55, 200.0, 10.0)  # step seen between frames 0.5 and 0.6
    levels[6] = 105.0  # a half-lit frame at 0.6 -> crossing at 0.6
    assert step_latencies(times, levels, [(0.45, True)]) == pytest.approx([0.15])
    assert step_latencies(times, np.full_like(times, 50.0), [(0.45, True)]) == []


def test_responsive_box_finds_the_correlated_block():
    rng = np.random.default_rng(0)
    drive = rng.uniform(0, 1, 30)
    frames = rng.normal(0, 0.05, (30, 40, 60))
    frames[:, 10:30, 20:50] += drive[:, None, None]
    box, score = responsive_box(correlation_map(frames, drive))
    assert box == (20, 10, 30, 20) and score > 0.9


@pytest.mark.parametrize("latency_ms", [50.0, 150.0])
def test_latency_calibration_recovers_rig_latency_within_one_frame(latency_ms):
    screen = VirtualScreen((36, 64))
    rig = SimulatedRig(screen, SimRigConfig(size_hw=(180, 320), fps=30, latency_ms=latency_ms))
    with screen, rig:
        result = measure_latency(screen, rig, flashes=6, hold_s=latency_ms / 1e3 + 0.12)
    assert result.count >= 10
    assert abs(result.median_ms - latency_ms) < 1e3 / 30
    assert result.p95_ms < latency_ms + 1e3 / 30 + 5
    assert result.camera_period_ms == pytest.approx(1e3 / 30, rel=0.1)


def test_roi_calibration_finds_the_door():
    screen = VirtualScreen((36, 64))
    rig = SimulatedRig(screen, SimRigConfig(size_hw=(360, 640), fps=30, latency_ms=40,
                                            door_roi=(100, 60, 300, 200)))
    with screen, rig:
        result = measure_roi(screen, rig, steps=10, hold_s=0.15, latency_s=0.08)
    assert np.allclose(result.roi, (100, 60, 300, 200), atol=8)
    assert result.camera_size_hw == (360, 640) and result.score > 0.8


@pytest.mark.parametrize(("drift", "expect"), [(0.0, False), (0.4, True)])
def test_exposure_calibration_flags_injected_auto_exposure_drift(drift, expect):
    screen = VirtualScreen((36, 64))
    rig = SimulatedRig(screen, SimRigConfig(size_hw=(180, 320), fps=30, latency_ms=30,
                                            drift=drift, drift_period_s=2.0))
    with screen, rig:
        result, dark = measure_exposure(screen, rig, duration_s=1.2, latency_s=0.05,
                                        roi=rig.door_roi, dark_frames=4)
    assert result.drifting is expect
    assert (result.drift_fraction > 0.05) is expect
    assert dark.shape == (180, 320, 3) and result.dark_level < result.mean_level


def test_calibration_json_round_trip_and_merge(tmp_path):
    lat = LatencyCalibration(median_ms=80, p95_ms=90, mean_ms=81, std_ms=3, count=4,
                             samples_ms=[78, 80, 80, 90])
    path = CalibrationResult(latency=lat).save(tmp_path / "c.json")
    loaded = CalibrationResult.load(path)
    assert loaded.latency == lat
    (tmp_path / "bad.json").write_text('{"latency": {"median_ms": "x"}}')
    with pytest.raises(ValueError, match="latency"):
        CalibrationResult.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="no such calibration file"):
        CalibrationResult.load(tmp_path / "none.json")

"""load_pair_datasets: the paper's preprocessing on a hand-made recording."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from acquire.config import RecordConfig, RecordingMetadata
from acquire.dataset import load_pair_datasets
from acquire.storage import RecordingWriter
from calibration.model import CalibrationResult, RoiCalibration
from mcnn.data.config import PairsDataConfig


def make_recording(folder, n=6, calibration=None):
    meta = RecordingMetadata(software="test", started_wall=0, started_iso="", started_monotonic_s=0,
                             host="h", mode="passive", camera={}, screen={}, rate_hz=30,
                             frame_format="png", latency_ms_used=0, calibration=None,
                             config=RecordConfig())
    writer = RecordingWriter(folder, meta, calibration)
    for k in range(n):
        cam = np.zeros((20, 40, 3), np.uint8)
        cam[:, :20] = 10 * k  # left half encodes the pair number
        cam[5:15, 30:40] = 200
        scr = np.full((16, 32, 3), 20 * k, np.uint8)
        # written out of time order on purpose: the split goes by time, not by write order
        writer.write_pair(k, cam, scr, None, {
            "t_camera_s": float(n - k), "t_screen_s": float(n - k), "t_wall": 0.0, "skew_ms": 0.0,
            "camera_frame": k, "screen_frame": k, "flags": ["large_skew"] if k == 2 else []})
    writer.close()
    return folder


def test_split_by_time_crop_mirror_resize_grayscale(tmp_path):
    folder = make_recording(tmp_path / "r")
    cfg = PairsDataConfig(path=folder, test_first=2, camera_roi=(20, 0, 20, 20), mirror=True,
                          camera_size=(10, 10), screen_size=(8, 4), grayscale=True)
    train, test = load_pair_datasets(cfg)
    assert (len(train), len(test)) == (3, 2)  # pair 2 is flagged and skipped
    assert train.in_channels == train.out_channels == 1
    cam, scr = test[0]  # earliest in time is the last written: k = 5
    assert cam.shape == (1, 10, 10) and scr.shape == (1, 4, 8) and cam.dtype == torch.float32
    assert scr.mean().item() == pytest.approx(100 / 255, abs=1e-3)
    # the crop kept x 20..40 (bright block at x 30..40); the mirror moved the block to the left
    assert cam[0, 5, :3].mean() > 0.7 and cam[0, 5, -3:].mean() < 0.05


def test_roi_comes_from_the_recording_calibration_and_torn_line_is_ignored(tmp_path):
    calib = CalibrationResult(roi=RoiCalibration(roi=(0, 0, 20, 20), method="given"))
    path = calib.save(tmp_path / "calibration.json")
    folder = make_recording(tmp_path / "r", calibration=path)
    with open(folder / "manifest.jsonl", "a") as f:
        f.write(json.dumps({"index": 99, "camera": "camera/000099.png"})[:30])  # torn, no newline
    train, test = load_pair_datasets(PairsDataConfig(path=folder, test_first=1, skip_flagged=False))
    assert len(train) + len(test) == 6
    cam, _ = test[0]
    assert cam.shape == (3, 20, 20) and cam.max().item() == pytest.approx(50 / 255, abs=1e-3)


def test_too_few_pairs_or_not_a_recording_is_a_clear_error(tmp_path):
    folder = make_recording(tmp_path / "r", n=3)
    with pytest.raises(ValueError, match="leaves none for training"):
        load_pair_datasets(PairsDataConfig(path=folder, test_first=256))
    with pytest.raises(ValueError, match="not a recording"):
        load_pair_datasets(PairsDataConfig(path=tmp_path, test_first=0))

"""The recording format round trip: RecordingWriter writes, mcnn.data.recording reads for training."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from acquire.config import RecordConfig
from acquire.storage import RecordingWriter
from mcnn.data.config import PairsDataConfig
from mcnn.data.recording import (
    CalibrationResult,
    RecordingMetadata,
    RoiCalibration,
    load_pair_datasets,
    read_manifest,
    read_metadata,
)


def make_recording(folder, n=6, calibration=None, fmt="png"):
    meta = RecordingMetadata(software="test", started_wall=0, started_iso="", started_monotonic_s=0,
                             host="h", mode="passive", camera={}, screen={}, rate_hz=30,
                             frame_format=fmt, latency_ms_used=0, calibration=None,
                             config=RecordConfig().model_dump(mode="json"))
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


def test_split_by_time_crop_mirror_resize_to_height_width_grayscale(tmp_path):
    folder = make_recording(tmp_path / "r")
    # sizes are (height, width) and deliberately not square: a swapped order changes every shape
    cfg = PairsDataConfig(path=folder, test_first=2, camera_roi=(20, 0, 20, 20), mirror=True,
                          camera_size=(6, 10), screen_size=(4, 8), grayscale=True)
    train, test = load_pair_datasets(cfg)
    assert (len(train), len(test)) == (3, 2)  # pair 2 is flagged and skipped
    assert train.in_channels == train.out_channels == 1
    cam, scr = test[0]  # earliest in time is the last written: k = 5
    assert cam.shape == (1, 6, 10) and scr.shape == (1, 4, 8) and cam.dtype == torch.float32
    assert scr.mean().item() == pytest.approx(100 / 255, abs=1e-3)
    # the crop kept x 20..40 (bright block at x 30..40); the mirror moved the block to the left
    assert cam[0, 3, :3].mean() > 0.7 and cam[0, 3, -3:].mean() < 0.05


def test_colour_items_keep_size_when_none_given(tmp_path):
    folder = make_recording(tmp_path / "r", fmt="tiff")
    train, _ = load_pair_datasets(PairsDataConfig(path=folder, test_first=1, skip_flagged=False))
    cam, scr = train[0]
    assert cam.shape == (3, 20, 40) and scr.shape == (3, 16, 32)


def test_metadata_holds_the_record_config_as_plain_json(tmp_path):
    folder = make_recording(tmp_path / "r", n=1)
    meta = read_metadata(folder)
    assert meta.config["camera"] == {"kind": "opencv", "device": 0, "size_hw": None, "fps": None}
    assert meta.config["rate_hz"] == 30.0


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


def test_old_calibration_camera_size_in_width_height_is_read_as_height_width(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"roi": {"roi": [1, 2, 3, 4], "method": "given",
                                        "camera_size": [640, 360]}}))
    assert CalibrationResult.load(path).roi.camera_size_hw == (360, 640)


def test_too_few_pairs_or_not_a_recording_is_a_clear_error(tmp_path):
    folder = make_recording(tmp_path / "r", n=3)
    with pytest.raises(ValueError, match="leaves none for training"):
        load_pair_datasets(PairsDataConfig(path=folder, test_first=256))
    with pytest.raises(ValueError, match="not a recording"):
        load_pair_datasets(PairsDataConfig(path=tmp_path, test_first=0))


def test_repeated_manifest_lines_count_once(tmp_path, caplog):
    folder = make_recording(tmp_path / "r", n=4)
    manifest = folder / "manifest.jsonl"
    lines = manifest.read_text().splitlines(keepends=True)
    manifest.write_text("".join(lines + lines[:2]))  # e.g. a manifest appended to itself
    with caplog.at_level(logging.WARNING):
        entries = read_manifest(folder)
    assert sorted(e.index for e in entries) == [0, 1, 2, 3]
    assert "repeat a pair index" in caplog.text
    train, test = load_pair_datasets(PairsDataConfig(path=folder, test_first=1,
                                                     skip_flagged=False))
    assert len(train) + len(test) == 4


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.png", "camera/../../x.png",
                                 "C:\\frames\\0.png"])
def test_manifest_paths_outside_the_recording_are_refused(tmp_path, bad):
    folder = make_recording(tmp_path / "r", n=2)
    manifest = folder / "manifest.jsonl"
    first = json.loads(manifest.read_text().splitlines()[0])
    first.update(index=7, camera=bad)
    with open(manifest, "a") as f:
        f.write(json.dumps(first) + "\n")
    with pytest.raises(ValueError) as info:
        read_manifest(folder)
    message = str(info.value)
    assert "\n" not in message and str(manifest) in message and repr(bad) in message
    with pytest.raises(ValueError, match="leaves the recording folder"):
        load_pair_datasets(PairsDataConfig(path=folder, test_first=0))


def test_an_unreadable_frame_is_named_in_the_error(tmp_path):
    folder = make_recording(tmp_path / "r", n=3, fmt="tiff")
    broken = folder / "camera" / "000001.tiff"
    broken.write_bytes(b"not a tiff at all")
    train, test = load_pair_datasets(PairsDataConfig(path=folder, test_first=0,
                                                     skip_flagged=False))
    times_order = [e.camera for e in train.entries]
    with pytest.raises(ValueError, match="000001.tiff"):
        train[times_order.index("camera/000001.tiff")]

"""PairRecorder: passive and active recordings, drops, full disk; the dataset format they leave."""

from __future__ import annotations

import errno
import json
import os
import subprocess

import numpy as np
import pytest

import acquire.storage as storage
from acquire.config import RecordConfig
from acquire.session import record
from mcnn.data.config import PairsDataConfig
from mcnn.data.protocol import PairDataset
from mcnn.data.recording import load_pair_datasets, read_manifest, read_metadata

SIM = "sim:size=160x90,latency_ms=40,fps=40,noise=0.0"


def passive(tmp_path, **kw) -> RecordConfig:
    base = dict(camera=SIM, screen="virtual:128x72", rate_hz=40, pairs=40, out=tmp_path,
                name="rec", latency_ms=40)
    base.update(kw)
    return RecordConfig(**base)


def test_passive_recording_is_complete_timestamped_and_loadable(tmp_path):
    folder, summary = record(passive(tmp_path))
    entries = read_manifest(folder)
    assert summary["pairs"] == len(entries) == 40 and summary["dropped"] == 0
    assert summary["stop_reason"] == "done"
    assert sorted(e.index for e in entries) == list(range(40))
    times = sorted(e.t_camera_s for e in entries)
    assert 20 < (len(times) - 1) / (times[-1] - times[0]) < 45  # ~40 pairs/s
    # pairing applied the latency: each screen grab is within a grab period of t_camera - 40 ms
    for e in entries:
        assert abs(e.t_camera_s - 0.040 - e.t_screen_s - e.skew_ms / 1e3) < 1e-9
        assert ("large_skew" in e.flags) == (abs(e.skew_ms) > 25.0)
    skews = sorted(abs(e.skew_ms) for e in entries)
    assert skews[len(skews) // 2] < 1e3 / 80 and skews[int(0.9 * len(skews))] < 1e3 / 80 + 10
    meta = read_metadata(folder)
    assert meta.mode == "passive" and meta.latency_ms_used == 40 and meta.frame_format == "tiff"
    assert meta.camera["latency_ms"] == 40 and meta.config["rate_hz"] == 40
    train, test = load_pair_datasets(PairsDataConfig(path=folder, test_first=10))
    assert isinstance(train, PairDataset) and (len(train), len(test)) == (30, 10)
    cam, scr = train[0]
    assert cam.shape == (3, 90, 160) and scr.shape == (3, 72, 128)
    assert cam.dtype == scr.dtype == np.float32 or str(cam.dtype) == "torch.float32"


def test_writers_falling_behind_drop_pairs_and_count_them(tmp_path, monkeypatch):
    real = storage.RecordingWriter.write_pair

    def slow(self, *a, **k):
        import time

        time.sleep(0.1)
        return real(self, *a, **k)

    monkeypatch.setattr(storage.RecordingWriter, "write_pair", slow)
    folder, summary = record(passive(tmp_path, writers=1, queue=2, pairs=30))
    entries = read_manifest(folder)
    assert summary["dropped"] > 5
    assert summary["captured"] == 30 == summary["pairs"] + summary["dropped"]
    assert len(entries) == summary["pairs"]
    assert json.loads((folder / "summary.json").read_text())["dropped"] == summary["dropped"]


def test_full_disk_stops_cleanly_and_keeps_written_pairs(tmp_path, monkeypatch):
    real, calls = storage.atomic_write_bytes, {"n": 0}

    def fill_up(path, data):
        calls["n"] += 1
        if calls["n"] > 21:  # metadata.json + 10 pairs fit
            raise storage.DiskFullError(errno.ENOSPC, "disk full while writing")
        real(path, data)

    monkeypatch.setattr(storage, "atomic_write_bytes", fill_up)
    folder, summary = record(passive(tmp_path, pairs=200, writers=1))
    assert summary["stop_reason"].startswith("disk full")
    entries = read_manifest(folder)
    assert len(entries) == summary["pairs"] == 10
    train, test = load_pair_datasets(PairsDataConfig(path=folder, test_first=2))
    assert len(train) + len(test) == 10 and train[len(train) - 1][0].shape[0] == 3


def test_real_full_tmpfs_stops_recording_with_manifest_intact(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                                            str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        folder, summary = record(passive(mnt, pairs=400))
        assert summary["stop_reason"].startswith("disk full")
        entries = read_manifest(folder)
        assert 0 < len(entries) == summary["pairs"] < 400
        assert not list(folder.rglob("*.tmp"))  # partial files were removed
        for e in entries:
            assert (folder / e.camera).stat().st_size > 0
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_active_mode_on_xvfb_records_the_stimulus_the_camera_saw(tmp_path, xvfb_display):
    config = RecordConfig(mode="active", camera="sim:size=320x180,latency_ms=60,fps=30,noise=0.0",
                          screen="1", rate_hz=10, pairs=8, out=tmp_path, name="act",
                          latency_ms=60, settle_ms=150, stimulus="generated",
                          stimulus_size_hw=(90, 160), seed=3)  # settle: slack for a loaded CPU
    folder, summary = record(config)
    entries = read_manifest(folder)
    assert summary["pairs"] == len(entries) == 8
    for k, e in enumerate(sorted(entries, key=lambda e: e.index)):
        assert e.stimulus_id == {"stimulus_index": k, "source": "generated",
                                 "seed": 3 * 1_000_003 + k}
        assert e.flags == []  # the screenshot shows the stimulus
        assert e.t_camera_s >= e.t_shown_s + 0.1
        # the rig's frame shows screen content from after the stimulus went up
        assert e.camera_meta["screen_time_s"] >= e.t_shown_s
        assert (folder / e.stimulus).exists()
    train, test = load_pair_datasets(PairsDataConfig(path=folder, test_first=2,
                                                     camera_size=(32, 64)))
    cam, target = train[0]
    assert cam.shape == (3, 32, 64) and target.shape == (3, 90, 160)  # target = exact stimulus

"""The acquire-pairs command: help, user errors, clean Ctrl-C, SIGKILL survival, calibrate, info."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apps.acquire_pairs import main
from mcnn.data.config import PairsDataConfig
from mcnn.data.recording import CalibrationResult, load_pair_datasets, read_manifest

OFFSCREEN = ["--camera", "sim:size=160x90,latency_ms=40,fps=30,noise=0.0",
             "--screen", "virtual:128x72"]


def test_help_documents_both_modes(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "passive" in text and "active" in text and "latency" in text
    assert main(["record", "--help"]) == 0
    assert "--stimulus" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["record", "--rate", "0"],
    ["record", "--camera", "nonsense", "--screen", "virtual"],
    ["record", "--screen", "region:1,2"],
    ["record", "--config", "missing.yaml"],
    ["info", "/nonexistent"],
    ["frobnicate"],
])
def test_user_mistakes_are_one_line_and_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("acquire-pairs: error: ") and "Traceback" not in "".join(err)


def _start(tmp_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "apps.acquire_pairs", "record", *OFFSCREEN, "--rate", "30",
           "--out", str(tmp_path), "--name", "rec", "--latency-ms", "40", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=Path(__file__).parents[2])


def _wait_lines(path: Path, n: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} manifest lines after {timeout} s")


def test_sigkill_loses_at_most_pairs_in_flight(tmp_path):
    proc = _start(tmp_path)
    manifest = tmp_path / "rec" / "manifest.jsonl"
    _wait_lines(manifest, 25, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    entries = read_manifest(tmp_path / "rec")
    assert len(entries) >= 25
    assert not (tmp_path / "rec" / "summary.json").exists()
    train, test = load_pair_datasets(PairsDataConfig(path=tmp_path / "rec", test_first=5))
    assert len(train) + len(test) == len(entries)
    for ds in (train, test):
        for k in range(len(ds)):
            cam, scr = ds[k]
            assert cam.shape == (3, 90, 160) and scr.shape == (3, 72, 128)


def test_ctrl_c_stops_cleanly_with_summary(tmp_path):
    proc = _start(tmp_path, "--duration", "60")
    _wait_lines(tmp_path / "rec" / "manifest.jsonl", 10, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
    assert "interrupted" in out.decode() and "drops 0" in err.decode()
    summary = json.loads((tmp_path / "rec" / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted"
    assert summary["pairs"] == len(read_manifest(tmp_path / "rec")) >= 10


def test_config_file_with_cli_override_and_info(tmp_path, capsys):
    cfg = tmp_path / "rec.yaml"
    cfg.write_text(f"camera: 'sim:size=160x90,fps=30'\nscreen: 'virtual:64x36'\npairs: 999\n"
                   f"rate_hz: 30\nout: '{tmp_path}'\nname: fromfile\nformat: png\n")
    assert main(["record", "--config", str(cfg), "--pairs", "12", "--latency-ms", "30"]) == 0
    entries = read_manifest(tmp_path / "fromfile")
    assert len(entries) == 12 and entries[0].camera.endswith(".png")
    capsys.readouterr()
    assert main(["info", str(tmp_path / "fromfile")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["pairs"] == 12 and info["clean_stop"] and info["latency_ms_used"] == 30


def test_calibrate_all_offscreen_writes_calibration_the_recorder_uses(tmp_path, capsys):
    out = tmp_path / "calibration.json"
    cam = "sim:size=320x180,latency_ms=70,fps=30,drift=0"
    argv = ["calibrate", "all", "--camera", cam, "--screen", "virtual:64x36", "--out", str(out),
            "--flashes", "5", "--hold-ms", "200", "--exposure-s", "1"]
    assert main(argv) == 0
    calib = CalibrationResult.load(out)
    assert abs(calib.latency.median_ms - 70) < 1e3 / 30
    assert calib.roi is not None and calib.roi.method == "correlation"
    assert calib.exposure is not None and not calib.exposure.drifting
    assert (tmp_path / "calibration_dark.npy").exists()
    assert main(["record", "--camera", cam, "--screen", "virtual:64x36", "--pairs", "5",
                 "--calibration", str(out), "--out", str(tmp_path), "--name", "r"]) == 0
    folder = tmp_path / "r"
    assert (folder / "calibration.json").exists()
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["latency_ms_used"] == pytest.approx(calib.latency.median_ms)
    train, _ = load_pair_datasets(PairsDataConfig(path=folder, test_first=1))
    x, y, w, h = calib.roi.roi
    assert train[0][0].shape == (3, h, w)  # the recording's calibration ROI is applied
    assert os.path.exists(out)

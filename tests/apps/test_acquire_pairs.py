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
    out = tmp_path / "new" / "folder" / "calibration.json"  # created before measuring
    cam = "sim:size=320x180,latency_ms=70,fps=30,drift=0"
    argv = ["calibrate", "all", "--camera", cam, "--screen", "virtual:64x36", "--out", str(out),
            "--flashes", "5", "--hold-ms", "200", "--exposure-s", "1"]
    assert main(argv) == 0
    calib = CalibrationResult.load(out)
    assert abs(calib.latency.median_ms - 70) < 1e3 / 30
    assert calib.roi is not None and calib.roi.method == "correlation"
    assert calib.exposure is not None and not calib.exposure.drifting
    assert (out.parent / "calibration_dark.npy").exists()
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


def test_record_config_from_toml_with_flags_set_and_print_config(tmp_path, capsys):
    cfg = tmp_path / "rec.toml"
    cfg.write_text('camera = "sim:size=160x90,fps=30"\nscreen = "virtual:64x36"\npairs = 999\n')
    argv = ["record", "--config", str(cfg), "--pairs", "5", "--camera", "sim:size=200x100",
            "--set", "camera.latency_ms=55", "--set", "screen.size_hw=[36,48]",
            "--stimulus-size", "320x180", "--out", str(tmp_path / "recs"), "--print-config"]
    assert main(argv) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["pairs"] == 5 and config["stimulus_size_hw"] == [180, 320]
    assert config["camera"]["kind"] == "sim" and config["camera"]["size_hw"] == [100, 200]
    assert config["camera"]["latency_ms"] == 55 and config["screen"]["size_hw"] == [36, 48]
    assert not (tmp_path / "recs").exists()  # --print-config records nothing


def test_record_config_errors_use_the_shared_wording(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("camera: 'sim:size=160x90'\nbogus: 1\nrate_hz: 0\n")
    assert main(["record", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert sorted(err) == [f"acquire-pairs: error: {bad}: bogus: unknown field",
                           f"acquire-pairs: error: {bad}: rate_hz: Input should be greater than 0"]
    assert main(["record", "--camera", "sim:frobs=1", "--print-config"]) == 2
    assert capsys.readouterr().err == "acquire-pairs: error: camera.sim.frobs: unknown field\n"


def test_record_help_lists_every_device_kind_and_field(capsys):
    assert main(["record", "--help"]) == 0
    text = capsys.readouterr().out
    for needle in ("camera = kind=sim:", "camera.latency_ms", "camera.size_hw", "screen = "
                   "kind=virtual:", "screen = kind=region:", "--set", "--print-config"):
        assert needle in text


def test_missing_camera_is_exactly_one_line_without_opencv_noise(tmp_path):
    if Path("/dev/video7").exists():
        pytest.skip("this machine has a /dev/video7")
    cmd = [sys.executable, "-m", "apps.acquire_pairs", "record", "--camera", "7", "--screen",
           "virtual:64x36", "--pairs", "1", "--latency-ms", "0", "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parents[2],
                          env={**os.environ, "OPENCV_LOG_LEVEL": "INFO"}, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("acquire-pairs: error: cannot open camera 7")


def test_calibrate_to_an_unwritable_place_fails_before_measuring(tmp_path, capsys, monkeypatch):
    import calibration.procedures as procedures

    def never(*a, **k):
        raise AssertionError("measured although the result could not be saved")

    monkeypatch.setattr(procedures, "measure_latency", never)
    (tmp_path / "file.txt").write_text("a file, not a folder")
    out = tmp_path / "file.txt" / "cal.json"
    argv = ["calibrate", "all", "--camera", "sim:size=160x90", "--screen", "virtual:64x36",
            "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"acquire-pairs: error: --out {out}: cannot create")


def test_calibrate_keeps_what_was_measured_when_a_later_step_fails(tmp_path, capsys, monkeypatch):
    import calibration.procedures as procedures
    from mcnn.data.recording import LatencyCalibration

    latency = LatencyCalibration(median_ms=70, p95_ms=75, mean_ms=71, std_ms=2, count=3,
                                 samples_ms=[69, 70, 75])
    monkeypatch.setattr(procedures, "measure_latency", lambda *a, **k: latency)

    def fails(*a, **k):
        raise ValueError("too few settled frames (2); raise hold_s above the latency")

    monkeypatch.setattr(procedures, "measure_roi", fails)
    out = tmp_path / "cal.json"
    argv = ["calibrate", "all", "--camera", "sim:size=160x90", "--screen", "virtual:64x36",
            "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "too few settled frames" in err[0]
    assert f"kept latency in {out}" in err[0]
    saved = CalibrationResult.load(out)
    assert saved.latency == latency and saved.roi is None and saved.camera["kind"] == \
        "simulated_rig"


def test_bench_xvfb_without_xvfb_installed_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no Xvfb on the PATH
    assert main(["bench", "--xvfb", "--seconds", "1"]) == 2
    assert capsys.readouterr().err == "acquire-pairs: error: Xvfb not found: apt-get install xvfb\n"


def test_info_on_an_empty_recording_prints_valid_json_with_a_note(tmp_path, capsys):
    from acquire.config import RecordConfig
    from acquire.storage import RecordingWriter
    from mcnn.data.recording import RecordingMetadata

    meta = RecordingMetadata(software="t", started_wall=0, started_iso="", started_monotonic_s=0,
                             host="h", mode="passive", camera={"name": "sim"}, screen={},
                             rate_hz=30, frame_format="tiff", latency_ms_used=0, calibration=None,
                             config=RecordConfig().model_dump(mode="json"))
    RecordingWriter(tmp_path / "empty", meta).close()
    assert main(["info", str(tmp_path / "empty")]) == 0

    def no_nan(token: str) -> None:
        raise AssertionError(f"{token} is not JSON")

    info = json.loads(capsys.readouterr().out, parse_constant=no_nan)
    assert info["pairs"] == 0 and info["skew_median_ms"] is None and info["skew_p95_ms"] is None
    assert "no complete pairs" in info["note"]

"""The whole system with no hardware: stimuli on an X display (Xvfb) -> acquire-pairs records
through the simulated rig -> mcnn-train -> nlos-view on the simulated camera shows the screen.

The same sequence as the README's "no hardware" commands, at tiny size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from apps import train
from apps.live import nlos_view
from mcnn.data.recording import read_manifest

CAMERA = "sim:size=160x90,latency_ms=40,noise=0.003,drift=0"
DOOR_ROI = [32, 13, 96, 62]  # the sim camera's door box at 160x90 (central 60 % x 70 %)


def test_record_on_xvfb_train_then_view_the_hidden_screen(tmp_path, xvfb_display, capsys):
    # its own process: the stimulus window must open on the X display, whatever Qt platform
    # this test process already uses (other tests render offscreen)
    env = {**os.environ, "DISPLAY": xvfb_display, "QT_QPA_PLATFORM": "xcb",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([
        sys.executable, "-c", "import sys; from apps.acquire_pairs import main; sys.exit(main())",
        "record", "--mode", "active", "--camera", CAMERA, "--screen", "1",
        "--set", "stimulus_size_hw=[90,160]", "--set", "settle_ms=20", "--set", "latency_ms=40",
        "--rate", "20", "--pairs", "48", "--out", str(tmp_path / "rec"), "--name", "r",
    ], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    entries = read_manifest(tmp_path / "rec" / "r")
    assert len(entries) == 48 and not any(e.flags for e in entries)
    cfg = {
        "name": "door", "out_dir": str(tmp_path / "runs"),
        "model": {"in_channels": 3, "out_channels": 3, "output_scale": 2, "depth": 2,
                  "base_width": 8, "max_width": 16, "branches": 1},
        "data": {"kind": "pairs", "path": str(tmp_path / "rec" / "r"), "mirror": True,
                 "camera_roi": DOOR_ROI, "camera_size": [16, 32], "screen_size": [32, 64],
                 "test_first": 8},
        "train": {"steps": 150, "batch_size": 8, "val_every": 50, "tensorboard": False,
                  },
        "optim": {"lr": 3e-3},
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(cfg))
    assert train.main([str(tmp_path / "train.yaml")]) == 0
    run = tmp_path / "runs" / "door"
    capsys.readouterr()
    rc = nlos_view.main([str(run), "--camera", CAMERA, "--screen", "virtual:320x180",
                         "--film-fps", "3", "--device", "cpu", "--frames", "12", "--no-window"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["frames_displayed"] == 12 and out["latency_ms_median"] > 0
    # the reconstruction of the hidden screen resembles the screen, not just its mean
    assert out["corr_mean"] > 0.3, out

    # the same viewer as a window on the X display, saving the screenshot the README shows
    shot = tmp_path / "nlos-view.png"
    proc = subprocess.run(
        [sys.executable, "-m", "apps.live.nlos_view", str(run), "--camera", CAMERA, "--screen",
         "virtual:320x180", "--device", "cpu", "--frames", "8", "--screenshot", str(shot)],
        env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["frames_displayed"] == 8
    assert shot.stat().st_size > 10_000

"""nlos-view on the simulated rig: panels show what they should, recording, benchmark JSON."""

from __future__ import annotations

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2
import numpy as np
import pytest

from apps.live import nlos_view
from mcnn.data.recording import read_manifest
from mcnn.models import MCNN, ModelConfig
from mcnn.weights import save_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    cfg = ModelConfig(in_channels=3, out_channels=3, output_scale=2, depth=2, base_width=4,
                      max_width=8, branches=1)
    save_model(MCNN(cfg), folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(
        {"data": {"kind": "pairs", "mirror": True, "camera_size": [16, 32],
                  "camera_roi": [32, 13, 96, 62]}}))
    return folder


def corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation, the outermost pixel ring left out (the grabbed panel's edge pixels
    blend with the background when the panel rect is resampled)."""
    a, b = a[1:-1, 1:-1], b[1:-1, 1:-1]
    a = a.astype(np.float64).ravel() - a.mean()
    b = b.astype(np.float64).ravel() - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def as_grey_like(grabbed: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    h, w = shape_hw
    return cv2.resize(grabbed.mean(axis=2).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)


def test_window_panels_show_the_cropped_camera_and_the_latency_matched_screen(checkpoint,
                                                                              spin_until_shown):
    from apps.live.panels import grab_panel, qt_app

    app = qt_app()
    args = nlos_view.build_parser().parse_args([
        str(checkpoint), "--camera", "sim:size=160x90,latency_ms=40", "--screen",
        "virtual:320x180", "--device", "cpu", "--film-fps", "2"])
    session = nlos_view.NlosSession(args)
    assert session.spec.mirror and session.spec.size_hw == (16, 32)
    assert session.spec.roi == (32, 13, 96, 62) == session.camera.door_roi  # as trained
    window = nlos_view.build_window(session, max_frames=None)
    window.resize(900, 600)
    window.show()
    window.start()
    try:
        assert spin_until_shown(window, 6) >= 6
        window.timer.stop()
        app.processEvents()
        panels = window.last_result.processed.panels
        for name in ("camera", "reconstruction", "screen"):
            shown = as_grey_like(grab_panel(window.grid, name), panels[name].shape[:2])
            expected = panels[name].mean(axis=2)
            # levels (0, 1) -> 0..255 on screen: the panel shows these very values ...
            assert np.abs(shown - 255.0 * expected)[1:-1, 1:-1].mean() < 4.0, name
            # ... and, where an (untrained) image has contrast beyond 8-bit rounding, its pattern
            if 255.0 * expected.std() > 8.0:
                assert corr(shown, expected) > 0.9, name
        error = as_grey_like(grab_panel(window.grid, "error"), panels["error"].shape)
        assert corr(error, np.clip(panels["error"], 0.0, 0.5)) > 0.9  # its levels are (0, 0.5)
        assert "PSNR" in window.grid.titles["error"].text
        assert float(window.stats_label.text().split("fps")[0]) > 0  # a rate once frames flow
    finally:
        window.close()
        session.close()
    assert not session.camera.is_open and not session.screen.is_open


def test_headless_benchmark_prints_fps_latency_and_records_pairs(checkpoint, tmp_path, capsys):
    rc = nlos_view.main([str(checkpoint), "--camera", "sim:size=160x90", "--screen",
                         "virtual:320x180", "--device", "cpu", "--frames", "8", "--no-window",
                         "--record", str(tmp_path / "rec")])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["frames_displayed"] == 8 and out["fps"] > 0
    for key in ("inference_ms_median", "inference_ms_p95", "latency_ms_median", "latency_ms_p95"):
        assert out[key] > 0
    assert out["latency_ms_median"] >= out["inference_ms_median"]
    assert out["recording"]["pairs"] >= 8
    entries = read_manifest(tmp_path / "rec")
    assert len(entries) == out["recording"]["pairs"]
    assert (tmp_path / "rec" / entries[0].camera).is_file()


def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, checkpoint):
    assert nlos_view.main([str(tmp_path / "missing"), "--no-window", "--frames", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing" in err[0]
    assert nlos_view.main([str(checkpoint), "--no-window"]) == 2
    assert "--frames" in capsys.readouterr().err
    assert nlos_view.main([str(checkpoint), "--roi", "1,2,3", "--no-window", "--frames", "1"]) == 2


def test_speed_flags_route_to_the_predictor(checkpoint):
    from apps.live.checkpoint import describe_predictor, predictor_options

    args = nlos_view.build_parser().parse_args([str(checkpoint), "--device", "cpu", "--compile"])
    assert predictor_options(args) == {"device": "cpu", "compile": "reduce-overhead"}
    args = nlos_view.build_parser().parse_args([str(checkpoint), "--compile", "--compile-mode",
                                                "default"])
    assert predictor_options(args) == {"device": "auto", "compile": "default"}
    assert predictor_options(nlos_view.build_parser().parse_args([str(checkpoint)]))["compile"] \
        is False

    class P:
        device, compile_mode, pinned = "cuda:0", "default", True

    assert describe_predictor(P()) == {"device": "cuda:0", "compile": "default", "pinned": True}

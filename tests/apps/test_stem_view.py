"""stem-view: raw and denoised panels, scale bar, saving float32 TIFFs, file series and the sim."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2
import numpy as np
import pytest
import tifffile

from acquire.sources.series import FrameSeriesSource
from apps.live import stem_view
from mcnn.data.image_io import PixelSize, read_raw, write_image
from mcnn.models import MCNN, ModelConfig
from mcnn.weights import save_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("stem") / "model.safetensors"
    cfg = ModelConfig(in_channels=1, out_channels=1, output_scale=1, depth=2, base_width=4,
                      max_width=8, branches=1)
    save_model(MCNN(cfg), path)
    return path


@pytest.fixture
def stack(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.random((5, 1, 32, 48)).astype(np.float32)
    path = write_image(tmp_path / "series.tif", frames, PixelSize(0.02, 0.02, "um"))
    return path, frames


def corr(a, b):
    a = a.astype(np.float64).ravel() - a.mean()
    b = b.astype(np.float64).ravel() - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def test_a_stack_plays_frame_by_frame_and_every_denoised_frame_is_saved(checkpoint, stack,
                                                                        tmp_path, capsys):
    path, frames = stack
    rc = stem_view.main([str(checkpoint), "--source", str(path), "--fps", "20", "--frames",
                         "50", "--warmup", "0", "--no-window", "--device", "cpu", "--save",
                         str(tmp_path / "out")])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["frames_read"] == 5 and out["source_error"] is None
    saved = sorted((tmp_path / "out").glob("*.tif"))
    # 20 fps in (slow enough for a loaded 2-core box, first inference included, to read nearly
    # every frame): a frame may still be replaced before the model takes it (newest wins), never
    # reordered
    assert 3 <= len(saved) <= 5
    assert {p.name for p in saved} <= {f"series_{i:04d}.tif" for i in range(5)}  # file, frame
    raw = read_raw(saved[0])
    assert raw.data.dtype == np.float32 and raw.data.shape == (32, 48)
    assert raw.pixel_size is not None and raw.pixel_size.x == pytest.approx(0.02)


def test_series_source_seek_while_paused(stack):
    path, frames = stack
    with FrameSeriesSource(path, fps=100) as source:
        first = source.read_next(-1)
        assert np.allclose(first.image[..., 0], frames[first.meta["series_index"], 0])
        source.pause()
        time.sleep(0.05)
        last = source.read_next(-1).index
        source.seek(3)
        got = source.read_next(last)
        assert got.meta["series_index"] == 3
        assert np.allclose(got.image[..., 0], frames[3, 0])
        assert got.meta["pixel_size"][1] == pytest.approx(0.02)
    assert not source.is_open


def test_window_shows_raw_and_denoised_with_a_scale_bar_and_saves(checkpoint, tmp_path,
                                                                   spin_until_shown):
    from apps.live.panels import LiveWindow, grab_panel, qt_app
    from apps.live.pipeline import LivePipeline
    from mcnn.infer import Predictor

    app = qt_app()
    args = stem_view.build_parser().parse_args([
        str(checkpoint), "--source", "sim:size=64x64,dose=2", "--diff",
        "--save", str(tmp_path / "saved")])
    source = stem_view.build_source(args.source, 60.0, False, False)
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu")
    pipeline = LivePipeline(source, stem_view.StemProcessor(predictor))
    window = LiveWindow(pipeline, lambda r: parts.show(r), title="t")
    parts = stem_view.StemWindowParts(window, source, args, 1)
    window.resize(900, 400)
    window.show()
    window.start()
    try:
        spin_until_shown(window, 4)
        window.timer.stop()
        app.processEvents()
        result = window.last_result
        panels = result.processed.panels
        for name in ("raw", "denoised"):
            grabbed = grab_panel(window.grid, name).mean(axis=2).astype(np.float32)
            shown = cv2.resize(grabbed, (64, 64), interpolation=cv2.INTER_AREA)
            assert corr(shown, np.clip(panels[name], *window.grid.levels[name])) > 0.8, name
        assert "PSNR" in window.grid.titles["raw"].text
        value, unit = parts.bar.text.toPlainText().split()  # as the figures label it: 200 pm
        assert unit in ("pm", "nm") and 1 <= float(value) < 1000
        parts.toggle_play()
        assert pipeline.paused  # the simulator has no pause of its own: the pipeline stops reading
        parts.save_current()
    finally:
        window.close()
    assert not source.is_open
    saved = sorted((tmp_path / "saved").glob("*.tif"))
    assert saved
    data = tifffile.imread(saved[-1])
    assert data.dtype == np.float32 and data.shape == (64, 64)


def test_bad_source_is_a_one_line_user_error(checkpoint, capsys):
    assert stem_view.main([str(checkpoint), "--source", "nowhere/", "--no-window",
                           "--frames", "1"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert stem_view.main([str(checkpoint), "--source", "sim:dose=x", "--no-window",
                           "--frames", "1"]) == 2


def test_nice_scale_bar_lengths():
    assert [stem_view.nice_length(v) for v in (0.9, 3.7, 12.0, 0.048)] == \
        pytest.approx([0.5, 2.0, 10.0, 0.02])


def test_compile_flag_routes_to_a_compiled_predictor_and_the_json_says_how_it_ran(checkpoint,
                                                                                  capsys):
    rc = stem_view.main([str(checkpoint), "--source", "sim:size=32x32,dose=4", "--fps", "100",
                         "--frames", "3", "--warmup", "1", "--no-window", "--device", "cpu",
                         "--compile"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["frames_displayed"] == 3 and out["psnr_db_mean"] > 0
    assert (out["device"], out["compile"], out["pinned"]) == ("cpu", "reduce-overhead", False)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-CUDA message")
def test_device_cuda_without_a_gpu_is_a_one_line_user_error(checkpoint, capsys):
    assert stem_view.main([str(checkpoint), "--source", "sim", "--no-window", "--frames", "1",
                           "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cuda" in err[0].lower()


def test_linked_panels_of_unequal_widths_share_zoom_without_their_ranges_growing(checkpoint,
                                                                                 spin_until_shown):
    from apps.live.panels import LiveWindow, qt_app
    from apps.live.pipeline import LivePipeline
    from mcnn.infer import Predictor

    app = qt_app()
    args = stem_view.build_parser().parse_args([str(checkpoint), "--source", "sim:size=64x64",
                                                "--fps", "100", "--diff"])
    source = stem_view.build_source(args.source, args.fps, False, False)
    pipeline = LivePipeline(source, stem_view.StemProcessor(Predictor.from_checkpoint(
        checkpoint, device="cpu")))
    window = LiveWindow(pipeline, lambda r: parts.show(r), title="t", max_frames=None)
    parts = stem_view.StemWindowParts(window, source, args, 1)
    window.resize(1200, 700)
    window.show()
    window.start()
    try:
        spin_until_shown(window, 40)  # frame after frame
        views = window.grid.views
        widths = [v.width() for v in views.values()]
        assert max(widths) > min(widths) + 5  # unequal panels: the case that used to run away
        for view in views.values():
            (x0, x1), (y0, y1) = view.viewRange()
            assert x1 - x0 < 4 * 64 and y1 - y0 < 8 * 64  # the image stays visible
        views["raw"].scaleBy((0.5, 0.5))  # zoom one: the others follow
        app.processEvents()
        scales, centres = [], []
        for view in views.values():
            (x0, x1), (y0, y1) = view.viewRange()
            scales.append((x1 - x0) / view.width())
            centres.append(((x0 + x1) / 2, (y0 + y1) / 2))
        assert max(scales) == pytest.approx(min(scales), rel=0.02)
        assert np.ptp(np.array(centres), axis=0).max() < 1.0
    finally:
        window.close()


def test_a_frame_too_small_for_a_stem_model_is_a_one_line_user_error(tiny_stem_run, tmp_path,
                                                                      capsys):
    np.save(tmp_path / "tiny.npy", np.full((8, 8), 5, np.uint16))
    assert stem_view.main([str(tiny_stem_run), "--source", str(tmp_path / "tiny.npy"),
                           "--no-window", "--frames", "1", "--device", "cpu"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert err == [f"stem-view: error: {tmp_path / 'tiny.npy'}: frame of 8 x 8 px; a STEM frame "
                   "needs at least 16 x 16 px"]


def test_a_stem_models_saved_frames_are_what_stem_denoise_writes(tiny_stem_run, tmp_path, capsys):
    """Saving from the viewer gives each file frame in its counts, as stem-denoise does (same
    units, same model), named after the file and frame, not in model units."""
    from apps import stem_denoise

    rng = np.random.default_rng(13)
    ramp = np.linspace(0.2, 2.0, 48)[None, :] * np.ones((32, 1))
    frames = (700 + 4 * rng.poisson(3.0 * ramp, (2, 32, 48))).astype(np.uint16)
    np.save(tmp_path / "scan.npy", frames)
    assert stem_view.main([str(tiny_stem_run), "--source", str(tmp_path / "scan.npy"), "--fps",
                           "5", "--frames", "2", "--warmup", "0", "--no-window", "--device",
                           "cpu", "--save", str(tmp_path / "view")]) == 0
    assert stem_denoise.main([str(tiny_stem_run), str(tmp_path / "scan.npy"), "-o",
                              str(tmp_path / "den"), "--device", "cpu"]) == 0
    capsys.readouterr()
    written = read_raw(tmp_path / "den" / "scan.tif").data
    saved = sorted((tmp_path / "view").glob("*.tif"))
    assert saved and {p.name for p in saved} <= {"scan_0000.tif", "scan_0001.tif"}
    for path in saved:
        i = int(path.stem.rsplit("_", 1)[1])
        got = read_raw(path).data
        assert got.mean() > 600  # counts (offset ~700), not model units (mean ~1)
        assert np.allclose(got, written[i], rtol=1e-5, atol=1e-2)


SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "microscopy"


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared test data absent")
def test_a_file_that_records_a_camera_image_is_warned_about(tiny_stem_run, caplog, capsys):
    """The Velox file says its image came from a Ceta camera: the viewer says so, as stem-denoise
    does; a DigiScan HAADF frame gets no such warning."""
    for name, warned in (("Camera_Ceta_Imaging_Micro.emd", True),
                         ("MoS2_Se_implanted_ADF.dm3", False)):
        caplog.clear()
        assert stem_view.main([str(tiny_stem_run), "--source", str(SHARED / name), "--frames",
                               "1", "--warmup", "0", "--no-window", "--device", "cpu"]) == 0
        capsys.readouterr()
        said = [r.getMessage() for r in caplog.records if "not a scanned STEM detector" in
                r.getMessage()]
        assert len(said) == (1 if warned else 0), name

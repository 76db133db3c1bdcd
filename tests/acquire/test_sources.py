"""Sources: real OpenCV decoding, real mss grabs of an Xvfb display, the simulated rig."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from acquire.config import SimRigConfig
from acquire.frame import monotonic_s
from acquire.sources.base import Source, SourceError, SourceExhausted
from acquire.sources.camera import CameraSource
from acquire.sources.file import FileSource
from acquire.sources.screen import ScreenSource, VirtualScreen
from acquire.sources.sim import SimulatedRig


def write_video(path: Path, frames: int = 40, fps: float = 20.0, size=(160, 120)) -> Path:
    """An MJPG .avi whose frame k has brightness 5 * k (so a frame tells its number)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for k in range(frames):
        writer.write(np.full((size[1], size[0], 3), 5 * k, np.uint8))
    writer.release()
    return path


def test_camera_source_reads_video_file_through_capture_with_fresh_frames(tmp_path):
    video = write_video(tmp_path / "clip.avi")
    cam = CameraSource(str(video))
    assert isinstance(cam, Source)
    with cam:
        first = cam.read()
        time.sleep(0.3)  # the grab thread keeps going: the next read is ~6 frames later
        later = cam.read()
        assert later.index >= first.index + 4
        # the freshest frame is the one the image says: brightness 5 * index
        assert abs(float(later.image.mean()) - 5 * later.index) < 4
        frames = [later]
        for _ in range(5):
            frames.append(cam.read_next(frames[-1].index))
        times = [f.t_monotonic_s for f in frames]
        assert all(b > a for a, b in zip(times, times[1:], strict=False))
        assert [f.index for f in frames] == sorted({f.index for f in frames})
        assert 0.03 < np.median(np.diff(times)) < 0.08  # replayed at the file's 20 fps
        assert cam.info()["settings"]["is_file"] is True
        with pytest.raises(SourceExhausted):
            for _ in range(60):
                cam.read_next(cam.read().index, timeout_s=1.0)


def test_camera_source_missing_device_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="cannot open camera"):
        CameraSource(str(tmp_path / "nope.avi")).open()


def test_file_source_folder_fast_mode_returns_every_frame_in_order(tmp_path):
    for k in range(5):
        cv2.imwrite(str(tmp_path / f"f{k:02d}.png"), np.full((8, 12, 3), 10 * k, np.uint8))
    with FileSource(tmp_path, fast=True) as src:
        frames = [src.read() for _ in range(5)]
        with pytest.raises(SourceExhausted):
            src.read()
    assert [f.meta["file"] for f in frames] == [f"f{k:02d}.png" for k in range(5)]
    assert [int(f.image.mean()) for f in frames] == [0, 10, 20, 30, 40]
    assert frames[0].image.shape == (8, 12, 3)


def test_file_source_video_replays_at_its_own_rate(tmp_path):
    video = write_video(tmp_path / "clip.avi", frames=30, fps=20.0)
    with FileSource(video) as src:
        t0 = monotonic_s()
        last = src.read()
        while last.index < 10:
            last = src.read_next(last.index)
        assert 0.4 < monotonic_s() - t0 < 0.8  # 10 frames at 20 fps


def _show_on_x(image: np.ndarray):
    from acquire.display import QtStimulusWindow

    window = QtStimulusWindow()
    window.show(image)
    return window


def test_screen_source_grabs_known_content_from_xvfb(xvfb_display):
    image = np.zeros((1080, 1920, 3), np.uint8)
    image[:, :960] = (255, 0, 0)  # left half red, right half blue
    image[:, 960:] = (0, 0, 255)
    image[100:200, 300:500] = (0, 255, 0)
    window = _show_on_x(image)
    try:
        with ScreenSource(1) as screen:
            frame = screen.read()
            assert frame.image.shape == (1080, 1920, 3)
            assert np.array_equal(frame.image, image)
        with ScreenSource(region=(300, 100, 200, 100)) as region:
            part = region.read().image
            assert part.shape == (100, 200, 3) and (part == (0, 255, 0)).all()
    finally:
        window.close()


def test_screen_source_without_display_says_how_to_fix(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
    with pytest.raises(SourceError, match="no display"):
        ScreenSource(1).open()
    monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")
    with pytest.raises(SourceError, match="Wayland"):
        ScreenSource(1).open()


def test_simulated_rig_shows_the_screen_after_its_latency_mirrored():
    screen = VirtualScreen((90, 160))
    rig = SimulatedRig(screen, SimRigConfig(size_hw=(180, 320), fps=50, latency_ms=100, drift=0.0,
                                            noise=0.0))
    x, y, w, h = rig.door_roi
    with screen, rig:
        rig.read()
        left = np.zeros((90, 160, 3), np.uint8)
        left[:, :80] = 255  # light on the screen's left half
        t_shown = screen.show(left)
        frames, last = [], -1
        while not frames or frames[-1].t_monotonic_s < t_shown + 0.2:
            frames.append(rig.read_next(last))
            last = frames[-1].index
    door = [f.image[y:y + h, x:x + w].astype(float) for f in frames]
    lit = [d.mean() > door[0].mean() + 20 for d in door]
    first_lit = frames[lit.index(True)]
    assert 0.1 <= first_lit.t_monotonic_s - t_shown < 0.1 + 0.02 + 0.005
    assert not any(lit[: lit.index(True)])
    d = door[-1]
    assert d[:, w // 2:].mean() > d[:, : w // 2].mean() + 10  # mirrored: right side brighter
    assert frames[-1].size_hw == (180, 320) and frames[-1].image.shape == (180, 320, 3)
    wall = frames[-1].image[:y].mean()
    assert abs(wall - frames[0].image[:y].mean()) < 1.0  # the wall does not follow the screen

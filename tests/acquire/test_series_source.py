"""FrameSeriesSource: a file series replayed in order (lazily, as stored, at fps or as fast as read,
looping), and a watched folder that only hands out complete files."""

from __future__ import annotations

import time

import numpy as np
import pytest

from acquire.sources.base import Source, SourceError, SourceExhausted
from acquire.sources.series import FrameSeriesSource
from mcnn.data.image_io import PixelSize, write_image


def _stack(path, n, start=0):
    frames = (np.arange(n, dtype=np.float32)[:, None, None, None] + start) * np.ones(
        (1, 1, 8, 10), np.float32)
    return write_image(path, frames, PixelSize(0.05, 0.05, "nm"))


def test_series_replays_files_and_stacks_in_order_as_stored(tmp_path):
    _stack(tmp_path / "a.tif", 3)
    np.save(tmp_path / "b.npy", np.full((8, 10), 4000, np.uint16))  # counts: not scaled to [0, 1]
    src = FrameSeriesSource([tmp_path], fps=None)
    assert isinstance(src, Source)
    with src:
        assert src.frame_count == 4
        frames = [src.read() for _ in range(4)]
        with pytest.raises(SourceExhausted):
            src.read()
    assert [float(f.image.mean()) for f in frames] == [0.0, 1.0, 2.0, 4000.0]
    assert frames[3].image.dtype == np.uint16
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert frames[1].meta["index_in_file"] == 1 and frames[1].image.shape == (8, 10, 1)
    assert frames[1].meta["frames_in_file"] == 3 and frames[3].meta["series_index"] == 3
    assert frames[0].meta["source_file"].endswith("a.tif")
    y, x, unit = frames[0].meta["pixel_size"]
    assert PixelSize(y, x, unit).to("nm").x == pytest.approx(0.05, rel=1e-4)


def test_series_reads_lazily_one_frame_at_a_time(tmp_path, monkeypatch):
    from mcnn.data import image_io

    _stack(tmp_path / "a.tif", 3)
    read: list[int] = []
    frame = image_io.FrameStack.frame

    def counting(self, index):
        read.append(index)
        return frame(self, index)

    monkeypatch.setattr(image_io.FrameStack, "frame", counting)
    with FrameSeriesSource(tmp_path / "a.tif", fps=None) as src:
        assert read == []  # opening counts frames from headers only
        src.read()
        assert read == [0]


def test_series_loops_and_plays_at_fps(tmp_path):
    _stack(tmp_path / "a.tif", 2)
    with FrameSeriesSource(tmp_path / "a.tif", fps=None, loop=True) as src:
        got = [float(src.read().image.mean()) for _ in range(5)]
    assert got == [0.0, 1.0, 0.0, 1.0, 0.0]
    with FrameSeriesSource(tmp_path / "a.tif", fps=20) as src:
        t0 = time.monotonic()
        first = src.read_next(-1)
        second = src.read_next(first.index, timeout_s=2.0)
        assert time.monotonic() - t0 >= 0.04  # 20 fps: the second frame comes ~50 ms later
        assert (first.meta["series_index"], second.meta["series_index"]) == (0, 1)
        with pytest.raises(SourceExhausted):
            src.read_next(second.index, timeout_s=2.0)


def test_series_errors_are_one_line(tmp_path):
    with pytest.raises(SourceError, match="holds no image frames"):
        FrameSeriesSource([tmp_path]).open()
    with pytest.raises(SourceError, match="nope.tif: no such file"):
        FrameSeriesSource(tmp_path / "nope.tif").open()
    with pytest.raises(SourceError, match="no such folder to watch"):
        FrameSeriesSource(tmp_path / "nope", watch=True).open()
    with pytest.raises(ValueError, match="fps must be > 0"):
        FrameSeriesSource(tmp_path, fps=0)


def test_folder_watch_skips_partial_and_temporary_files(tmp_path):
    np.save(tmp_path / "old.npy", np.zeros((4, 4), np.float32))  # there before: not yielded
    src = FrameSeriesSource(tmp_path, fps=None, watch=True, existing=False, poll_s=0.01)
    with src:
        (tmp_path / "f1.npy.tmp").write_bytes(b"partial")  # temporary name: ignored
        np.save(tmp_path / "f1.npy", np.full((4, 4), 1.0, np.float32))
        src.poll()  # first sighting: not yet stable
        assert src.frame_count == 0
        first = src.read(timeout_s=1.0)  # stable on the next poll
        assert float(first.image.mean()) == 1.0 and first.meta["source_file"].endswith("f1.npy")
        # A file still being written: its size changes between polls, so it is not taken.
        growing = tmp_path / "f2.npy"
        np.save(growing, np.full((4, 4), 2.0, np.float32))
        data = growing.read_bytes()
        growing.write_bytes(data[:40])
        src.poll()
        growing.write_bytes(data[:90])
        src.poll()
        assert src.frame_count == 1
        growing.write_bytes(data)
        second = src.read(timeout_s=1.0)
        assert float(second.image.mean()) == 2.0 and second.index == 1
        with pytest.raises(SourceError, match="no new frame"):
            src.read(timeout_s=0.05)


def test_folder_watch_includes_existing_files_and_streams_new_ones_at_fps(tmp_path):
    np.save(tmp_path / "a.npy", np.full((4, 4), 1.0, np.float32))
    with FrameSeriesSource(tmp_path, fps=50, watch=True, poll_s=0.01) as src:
        first = src.read_next(-1, timeout_s=2.0)
        np.save(tmp_path / "b.npy", np.full((4, 4), 2.0, np.float32))
        second = src.read_next(first.index, timeout_s=2.0)
    assert (float(first.image.mean()), float(second.image.mean())) == (1.0, 2.0)


def test_folder_watch_skips_a_broken_file_after_retries(tmp_path):
    src = FrameSeriesSource(tmp_path, fps=None, watch=True, poll_s=0.0, max_retries=2)
    with src:
        (tmp_path / "bad.npy").write_bytes(b"not an array at all")
        for _ in range(6):
            src.poll()
        assert len(src.skipped) == 1 and "bad.npy" in src.skipped[0]
        assert src.info()["skipped"] == src.skipped


# -- the short strings: series:<path> and watch:<folder> -------------------------------------------


def test_series_and_watch_specs_build_the_one_frame_series_source(tmp_path):
    from acquire.sources.spec import build_frame_source, is_frame_source_spec

    _stack(tmp_path / "a.tif", 2)
    series = build_frame_source(f"series:{tmp_path / 'a.tif'}", fps=None)
    assert isinstance(series, FrameSeriesSource) and not series.watch
    with series:
        assert [float(series.read().image.mean()) for _ in range(2)] == [0.0, 1.0]
    folder = build_frame_source(f"series:{tmp_path}", fps=5.0, loop=True)
    assert (folder.fps, folder.loop, folder.path) == (5.0, True, tmp_path)
    watch = build_frame_source(f"watch:{tmp_path}", fps=None, existing=False)
    assert isinstance(watch, FrameSeriesSource) and watch.watch and not watch.existing
    with watch:
        assert watch.frame_count == 0  # existing files skipped; new ones are waited for
        with pytest.raises(SourceError, match="no new frame"):
            watch.read(timeout_s=0.02)
    assert is_frame_source_spec("watch:/x") and not is_frame_source_spec(str(tmp_path))


@pytest.mark.parametrize("spec, message", [
    ("series:{}/nope.tif", "series:{}/nope.tif: no such file or folder"),
    ("watch:{}/nope", "watch:{}/nope: no such folder to watch"),
    ("watch:{}/a.tif", "watch:{}/a.tif: no such folder to watch"),
    ("series:", "frame source 'series:': expected series:<file or folder> or watch:<folder>"),
])
def test_bad_frame_source_specs_are_one_line(tmp_path, spec, message):
    from acquire.sources.spec import SpecError, build_frame_source

    _stack(tmp_path / "a.tif", 1)
    with pytest.raises(SpecError) as info:
        build_frame_source(spec.format(tmp_path))
    assert str(info.value) == message.format(tmp_path)

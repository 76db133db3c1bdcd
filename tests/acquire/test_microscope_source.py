"""Microscope sources: a file series replayed in order, and a watched folder that only hands out
complete files."""

from __future__ import annotations

import numpy as np
import pytest

from acquire.sources.base import Source, SourceError, SourceExhausted
from acquire.sources.microscope import FolderWatchSource, FrameSeriesSource
from mcnn.data.image_io import PixelSize, write_image


def _stack(path, n, start=0):
    frames = (np.arange(n, dtype=np.float32)[:, None, None, None] + start) * np.ones(
        (1, 1, 8, 10), np.float32)
    return write_image(path, frames, PixelSize(0.05, 0.05, "nm"))


def test_series_source_replays_files_and_stacks_in_order(tmp_path):
    _stack(tmp_path / "a.tif", 3)
    np.save(tmp_path / "b.npy", np.full((8, 10), 7.0, np.float32))
    src = FrameSeriesSource([tmp_path])
    assert isinstance(src, Source)
    with src:
        frames = [src.read() for _ in range(4)]
        with pytest.raises(SourceExhausted):
            src.read()
    assert [float(f.image.mean()) for f in frames] == [0.0, 1.0, 2.0, 7.0]
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert frames[1].meta["index_in_file"] == 1 and frames[1].image.shape == (8, 10, 1)
    m = frames[0].meta
    ps = PixelSize(m["pixel_size_y"], m["pixel_size_x"], m["pixel_size_unit"]).to("nm")
    assert ps.x == pytest.approx(0.05, rel=1e-4)


def test_series_source_on_empty_folder_is_one_line(tmp_path):
    with pytest.raises(SourceError, match="holds no image frames"):
        FrameSeriesSource([tmp_path]).open()


def test_folder_watch_skips_partial_and_temporary_files(tmp_path):
    np.save(tmp_path / "old.npy", np.zeros((4, 4), np.float32))  # there before: not yielded
    src = FolderWatchSource(tmp_path, poll_s=0.01)
    with src:
        (tmp_path / "f1.npy.tmp").write_bytes(b"partial")  # temporary name: ignored
        np.save(tmp_path / "f1.npy", np.full((4, 4), 1.0, np.float32))
        src.poll()  # first sighting: not yet stable
        assert not src._frames
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
        assert not src._frames
        growing.write_bytes(data)
        second = src.read(timeout_s=1.0)
        assert float(second.image.mean()) == 2.0 and second.index == 1
        with pytest.raises(SourceError, match="no new frame"):
            src.read(timeout_s=0.05)


def test_folder_watch_skips_a_broken_file_after_retries(tmp_path):
    src = FolderWatchSource(tmp_path, poll_s=0.0, max_retries=2)
    with src:
        (tmp_path / "bad.npy").write_bytes(b"not an array at all")
        for _ in range(6):
            src.poll()
        assert len(src.skipped) == 1 and "bad.npy" in src.skipped[0]

"""FolderWatcher: complete files only, each once; slow, deleted, empty and TIA files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from acquire.sources.base import SourceError
from acquire.sources.watch import FolderWatcher

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "microscopy"


def _npy(frames: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, frames)
    return buf.getvalue()


def _accept_readable(path: Path) -> None:
    from mcnn.data.image_io import open_frames

    with open_frames(path) as stack:
        stack.frame(len(stack) - 1)


def _touch_later(path: Path, data: bytes, mode: str = "wb") -> None:
    with open(path, mode) as f:
        f.write(data)


def test_a_file_is_taken_once_complete_and_once_only(tmp_path):
    watcher = FolderWatcher(tmp_path, accept=_accept_readable, max_retries=2)
    data = _npy(np.ones((2, 16, 16), np.float32))
    (tmp_path / "a.npy").write_bytes(data)
    (tmp_path / "b.npy.part").write_bytes(data)  # temporary name: never taken
    assert watcher.poll() == [] and watcher.pending == 1  # first sighting
    assert watcher.poll() == [tmp_path / "a.npy"] and watcher.pending == 0
    assert watcher.poll() == []


def test_a_slow_writer_skipped_file_is_taken_when_it_completes(tmp_path):
    """Half a file stable long enough to be given up on is looked at again once it grows, and
    leaves the skipped list when taken."""
    watcher = FolderWatcher(tmp_path, accept=_accept_readable, max_retries=2)
    data = _npy(np.ones((3, 16, 16), np.float32))
    path = tmp_path / "slow.npy"
    path.write_bytes(data[: len(data) // 2])
    for _ in range(3):
        assert watcher.poll() == []
    assert len(watcher.skipped) == 1 and "slow.npy" in watcher.skipped[0]
    assert watcher.pending == 0  # given up: not "still being written"
    _touch_later(path, data[len(data) // 2:], "ab")
    assert watcher.poll() == []  # changed: looked at again, first sighting
    assert watcher.poll() == [path] and watcher.skipped == []


def test_deleted_and_empty_files_do_not_stay_pending(tmp_path):
    watcher = FolderWatcher(tmp_path, accept=_accept_readable, max_retries=2)
    (tmp_path / "gone.npy").write_bytes(b"\x93NUMPY")
    (tmp_path / "empty.npy").write_bytes(b"")
    watcher.poll()
    assert watcher.pending == 2
    (tmp_path / "gone.npy").unlink()
    for _ in range(3):
        watcher.poll()
    assert watcher.pending == 0
    assert len(watcher.skipped) == 1 and "empty.npy: empty file" in watcher.skipped[0]


def test_a_reader_error_of_any_kind_skips_the_file_and_the_folder_going_away_is_an_error(
        tmp_path):
    def broken(path: Path) -> None:
        raise KeyError("a reader bug")

    folder = tmp_path / "w"
    folder.mkdir()
    watcher = FolderWatcher(folder, accept=broken, max_retries=1)
    (folder / "x.npy").write_bytes(_npy(np.ones((16, 16), np.float32)))
    watcher.poll()
    assert watcher.poll() == [] and len(watcher.skipped) == 1 and "x.npy" in watcher.skipped[0]
    (folder / "x.npy").unlink()
    folder.rmdir()
    with pytest.raises(SourceError, match="the watched folder is gone"):
        watcher.poll()


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared test data absent")
def test_a_tia_series_is_taken_once_through_its_ser(tmp_path):
    for name in ("16_STOimage.emi", "16_STOimage_1.ser"):
        (tmp_path / name).symlink_to((SHARED / name).resolve())
    watcher = FolderWatcher(tmp_path, accept=_accept_readable)
    watcher.poll()
    assert [p.name for p in watcher.poll()] == ["16_STOimage_1.ser"]


def test_a_file_that_grows_after_it_was_taken_is_handed_out_again(tmp_path):
    """A series written frame by frame (TIA .ser) may be complete-looking between frames: when
    it changes after being taken, it comes back once stable, so the new frames are not lost."""
    watcher = FolderWatcher(tmp_path, accept=_accept_readable)
    path = tmp_path / "series.npy"
    path.write_bytes(_npy(np.ones((2, 16, 16), np.float32)))
    watcher.poll()
    assert watcher.poll() == [path]
    assert watcher.poll() == []
    path.write_bytes(_npy(np.ones((3, 16, 16), np.float32)))  # one frame more
    assert watcher.poll() == []  # changed: watched until stable again
    assert watcher.poll() == [path]
    assert watcher.poll() == []


def test_a_watched_series_that_grows_adds_only_its_new_frames(tmp_path):
    from acquire.sources.series import FrameSeriesSource

    path = tmp_path / "series.npy"
    path.write_bytes(_npy(np.stack([np.full((16, 16), i, np.uint16) for i in range(2)])))
    with FrameSeriesSource(tmp_path, fps=None, watch=True, poll_s=0.01) as source:
        got = [int(source.read_next(-1, timeout_s=5).image[0, 0, 0]) for _ in range(2)]
        path.write_bytes(_npy(np.stack([np.full((16, 16), i, np.uint16) for i in range(4)])))
        got += [int(source.read_next(-1, timeout_s=5).image[0, 0, 0]) for _ in range(2)]
        assert source.frame_count == 4
    assert got == [0, 1, 2, 3]

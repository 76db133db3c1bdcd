"""Lazy frame series: files stay on disk, one frame is read at a time, order is kept."""

from __future__ import annotations

import resource
import subprocess
import sys

import numpy as np
import pytest

from mcnn.data.image_io import ImageFileError, open_frames
from mcnn.data.series import FrameSeries


def test_a_10_gb_series_streams_without_loading_it(tmp_path):
    path = tmp_path / "big.npy"
    try:  # a sparse file: 10.5 GB declared, almost nothing on disk
        big = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                        shape=(2500, 1024, 1024))
    except OSError as exc:
        pytest.skip(f"no sparse 10 GB file here ({exc})")
    big[1] = 1.0
    big[2499] = 2.0
    del big
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    series = FrameSeries([path])
    assert series.count() == 2500
    frames = iter(series)
    first = [next(frames) for _ in range(3)]
    assert [float(f.image.mean()) for f in first] == [0.0, 1.0, 0.0]
    assert first[1].meta["index_in_file"] == 1 and first[1].meta["frames_in_file"] == 2500
    with open_frames(path) as stack:
        assert float(stack.frame(2499).mean()) == 2.0
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 200  # 10 GB never loaded; a few 4 MiB frames at most


def test_series_orders_folders_by_name_and_counts_across_files(tmp_path):
    for name, value in (("b.npy", 2.0), ("a.npy", 1.0)):
        np.save(tmp_path / name, np.full((2, 4, 4), value, np.float32))
    frames = list(FrameSeries([tmp_path]))
    assert [f.meta["index"] for f in frames] == [0, 1, 2, 3]
    assert [float(f.image[0, 0]) for f in frames] == [1.0, 1.0, 2.0, 2.0]
    assert frames[2].source.name == "b.npy"


def test_empty_folder_and_colour_images_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageFileError, match="empty: folder holds no image frames"):
        FrameSeries([tmp_path / "empty"])
    np.save(tmp_path / "rgb.npy", np.zeros((16, 16, 3), np.float32))
    with pytest.raises(ImageFileError, match="rgb.npy: colour image"):
        list(FrameSeries([tmp_path / "rgb.npy"]))


def test_microscopy_readers_import_no_format_library_until_used():
    code = ("import sys, mcnn, mcnn.data.image_io, mcnn.data.microscopy, mcnn.data.series, "
            "mcnn.stem.normalise, mcnn.stem.calibration; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('rsciio', 'ncempy', 'mrcfile', 'h5py', 'tifffile', 'cv2')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

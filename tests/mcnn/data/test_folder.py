"""Folders of input/target images, paired by name: loading, crops, scale and clear errors."""

import numpy as np
import pytest
import tifffile

from mcnn.data.config import FolderDataConfig
from mcnn.data.folder import load_folder_pairs
from mcnn.data.image_io import ImageFileError


def _make(tmp_path, n=5, size=24, scale=1, suffix=".npy"):
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        x = rng.random((size, size), dtype=np.float32)
        np.save(tmp_path / "in" / f"f{i}.npy", x)
        y = np.kron(x, np.ones((scale, scale), np.float32)) * 2
        if suffix == ".tif":
            tifffile.imwrite(tmp_path / "out" / f"f{i}.tif", y)
        else:
            np.save(tmp_path / "out" / f"f{i}.npy", y)
    return FolderDataConfig(inputs=tmp_path / "in", targets=tmp_path / "out", val_count=2)


def test_pairs_by_name_hold_out_the_last_and_keep_values(tmp_path):
    cfg = _make(tmp_path, suffix=".tif")
    train, val = load_folder_pairs(cfg)
    assert len(train) == 3 and len(val) == 2
    x, y = train[0]
    assert x.shape == (1, 24, 24) and y.dtype == x.dtype
    assert np.allclose(y.numpy(), 2 * x.numpy())  # float TIFF values are not rescaled


def test_random_crops_follow_the_output_scale_and_epoch(tmp_path):
    cfg = _make(tmp_path, scale=2).model_copy(update={"crop": 8})
    train, _ = load_folder_pairs(cfg)
    x, y = train[1]
    assert x.shape == (1, 8, 8) and y.shape == (1, 16, 16)
    assert np.allclose(np.kron(x.numpy()[0], np.ones((2, 2))) * 2, y.numpy()[0])
    a = train[1][0]
    train.set_epoch(1)
    assert not np.array_equal(a.numpy(), train[1][0].numpy())


def test_errors_name_the_folder_or_file(tmp_path):
    cfg = _make(tmp_path)
    (tmp_path / "out" / "f0.npy").write_bytes(b"not numpy")
    with pytest.raises(ImageFileError, match=r"f0\.npy: not a readable \.npy"):
        load_folder_pairs(cfg)
    with pytest.raises(ImageFileError, match="no such folder"):
        load_folder_pairs(FolderDataConfig(inputs=tmp_path / "nope", targets=tmp_path / "out"))
    with pytest.raises(ValueError, match="inputs and targets must differ"):
        FolderDataConfig(inputs=tmp_path / "in", targets=tmp_path / "in")

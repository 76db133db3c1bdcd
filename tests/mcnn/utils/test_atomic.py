"""Crash-safe writes leave complete files, readable as the user's umask says."""

import os
import stat

import pytest
import torch

from mcnn.utils.atomic import atomic_path, atomic_write_text


def test_files_written_through_atomic_path_follow_the_umask(tmp_path):
    """safetensors creates 0600 files; through atomic_path another user can still read them."""
    from safetensors.torch import save_file

    with atomic_path(tmp_path / "w.safetensors") as tmp:
        save_file({"a": torch.zeros(2)}, str(tmp))
    atomic_write_text(tmp_path / "c.json", "{}")
    mask = os.umask(0)
    os.umask(mask)
    for name in ("w.safetensors", "c.json"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o666 & ~mask


def test_a_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "x.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]

"""MRC images and stacks through mrcfile, memory-mapped; the voxel size (angstrom) becomes the
pixel size and the header labels are kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mcnn.data.image_file import (
    FrameStack,
    ImageFileError,
    RawImage,
    check_declared_size,
    first_line,
    import_extra,
)
from mcnn.data.units import PixelSize, canonical_pixel_size


def _mrc_meta(path: Path, mrc: Any) -> tuple[PixelSize | None, dict[str, Any]]:
    vs = mrc.voxel_size
    pixel_size = canonical_pixel_size(float(vs.y), float(vs.x), "A")
    meta: dict[str, Any] = {"format": "mrc", "reader": "mrcfile", "source_file": str(path),
                            "signal": ""}
    label_count = int(mrc.header.nlabl)
    labels = [bytes(lb).decode("ascii", "replace").strip() for lb in mrc.header.label[:label_count]]
    if labels:
        meta["labels"] = labels
    return pixel_size, meta


def _mrc_axes(path: Path, shape: tuple[int, ...]) -> str:
    if len(shape) == 2:
        return "YX"
    if len(shape) == 3:
        return "NYX"
    raise ImageFileError(f"{path}: {len(shape)}-D MRC data; expected an image or a stack")


def read_mrc(path: Path, max_pixels: int) -> RawImage:
    mrcfile = import_extra(path, "mrcfile", "MRC")
    try:
        with mrcfile.mmap(path, mode="r", permissive=False) as mrc:
            shape = tuple(int(s) for s in mrc.data.shape)
            axes = _mrc_axes(path, shape)
            check_declared_size(path, shape, max_pixels)
            pixel_size, meta = _mrc_meta(path, mrc)
            data = np.array(mrc.data)
    except ImageFileError:
        raise
    except Exception as exc:
        raise ImageFileError(f"{path}: not a readable MRC file ({first_line(exc)})") from None
    return RawImage(data, path, axes, pixel_size, meta)


def open_mrc(path: Path) -> FrameStack:
    mrcfile = import_extra(path, "mrcfile", "MRC")
    try:
        mrc = mrcfile.mmap(path, mode="r", permissive=False)
    except Exception as exc:
        raise ImageFileError(f"{path}: not a readable MRC file ({first_line(exc)})") from None
    shape = tuple(int(s) for s in mrc.data.shape)
    axes = _mrc_axes(path, shape)
    pixel_size, meta = _mrc_meta(path, mrc)
    return FrameStack(path, mrc.data, axes, pixel_size, meta, close=mrc.close)

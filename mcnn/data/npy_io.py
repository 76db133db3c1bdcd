"""NumPy ``.npy`` arrays: memory-mapped, so a stack of frames is read one frame at a time.

NPY stores no axes and no pixel size: a 3-D array is frames unless its last axis looks like colour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mcnn.data.image_file import FrameStack, ImageFileError, RawImage, check_declared_size


def _npy_memmap(path: Path) -> tuple[np.ndarray, str]:
    """The array memory-mapped (header read, no pixel) and its axes."""
    try:
        header = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise ImageFileError(f"{path}: not a readable .npy array ({exc})") from exc
    shape = header.shape
    # Axes are not stored in NPY: a last axis of 1/3/4 on a 3-D array whose first axis is longer
    # than 4 is colour, so a (H, W, 3) array saved with NumPy is not taken for H frames 3 px wide.
    if len(shape) == 3 and shape[-1] in (1, 3, 4) and shape[0] > 4:
        axes = "YXC"
    else:
        axes = {2: "YX", 3: "NYX", 4: "NCYX"}.get(len(shape), "?" * len(shape))
    return header, axes


def read_npy(path: Path, max_pixels: int) -> RawImage:
    header, axes = _npy_memmap(path)
    shape = header.shape
    frames = shape[:-1] if axes == "YXC" else shape[:1] + shape[2:] if axes == "NCYX" else shape
    check_declared_size(path, tuple(frames), max_pixels)
    data = np.array(header)
    del header
    return RawImage(data, path, axes, meta={"format": "npy"})


def open_npy(path: Path) -> FrameStack:
    data, axes = _npy_memmap(path)
    if axes == "NCYX" and data.shape[1] == 1:
        data, axes = data[:, 0], "NYX"
    if axes not in ("YX", "YXC", "NYX"):
        raise ImageFileError(f"{path}: array of shape {data.shape}; expected (H, W) or (N, H, W) "
                             "frames")
    return FrameStack(path, data, axes, None, {"format": "npy", "source_file": str(path)})

"""A lazy frame series: files, folders and stacks read one frame at a time.

``FrameSeries(inputs)`` walks its inputs in order (a folder: its image files sorted by name; a
stack: its frames in order) and yields :class:`SeriesFrame` objects: one ``(H, W)`` frame as
stored (dtype kept), its pixel size and metadata (``source_file``, ``index_in_file``, ``index``
across the series, plus what the reader found: dwell/frame time, acquisition time, detector).
Only one file is open at a time and only one frame is in memory (memory maps, HDF5 slices or
dask arrays through ``mcnn.data.image_io.open_frames``), so a 10 GB series streams in constant
memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcnn.data.image_io import ImageFileError, PixelSize, list_images, open_frames


@dataclass
class SeriesFrame:
    """One ``(H, W)`` frame as stored, with what is known about it."""

    image: np.ndarray
    pixel_size: PixelSize | None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> Path:
        return Path(self.meta["source_file"])


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders as their image files sorted by name; an empty folder is an error."""
    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = list_images(path)
            if not files:
                raise ImageFileError(f"{path}: folder holds no image frames")
            out += files
        else:
            out.append(path)
    return out


class FrameSeries:
    """Frames of ``inputs`` (files, folders, stacks, ``file.h5#/dataset``) in order, lazily."""

    def __init__(self, inputs: Iterable[str | Path]) -> None:
        self.files = expand_inputs(inputs)

    def count(self) -> int:
        """Total frames (opens each file's header, reads no pixels where the format allows)."""
        total = 0
        for path in self.files:
            with open_frames(path) as stack:
                total += len(stack)
        return total

    def __iter__(self) -> Iterator[SeriesFrame]:
        index = 0
        for path in self.files:
            with open_frames(path) as stack:
                n = len(stack)
                if stack.axes.endswith("C"):
                    raise ImageFileError(f"{path}: colour image; expected greyscale frames")
                for i in range(n):
                    image = stack.frame(i)
                    meta = {**stack.meta, "source_file": str(stack.meta.get("source_file", path)),
                            "path": str(path), "index_in_file": i, "frames_in_file": n,
                            "index": index}
                    index += 1
                    yield SeriesFrame(image, stack.pixel_size, meta)

"""What every image reader shares: the error type, the raw image and the lazily read frame stack,
the size limit checked before decoding, the ``file#dataset`` spelling, and one-line errors for a
missing optional library. The readers (``npy_io``, ``tiff_io``, ``raster_io``, ``microscopy``,
``mrc_io``, ``hdf5_io``) build on this module; ``mcnn.data.image_io`` registers them by suffix.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcnn.data.units import PixelSize

MAX_PIXELS = 2**28
"""Default limit on the pixels a file may declare (all frames, channels not counted)."""

EXTRA_HINT = 'pip install "mcnn-imaging[microscopy]"'


class ImageFileError(ValueError):
    """A file that cannot be used as an image; the message names it and says what was expected."""


@dataclass
class RawImage:
    """Pixels exactly as stored, and what the file says about them.

    ``axes`` names the axes of ``data``: ``Y`` rows, ``X`` columns, ``C`` colour channels (RGB or
    RGBA, last), ``N`` frames of a stack (first). Readers give one of ``YX``, ``YXC``, ``NYX``,
    ``NYXC`` or ``NCYX``.
    """

    data: np.ndarray
    path: Path
    axes: str
    pixel_size: PixelSize | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class FrameStack:
    """Frames of one file kept on disk: ``frame(i)`` reads one ``(H, W)`` frame as stored.

    ``data`` is anything indexable with ``.shape`` (a memory map, an HDF5 dataset, a dask array, or
    an in-memory array for formats without a lazy opener) laid out as ``axes`` (``YX``, ``NYX``;
    colour ``YXC``/``NYXC`` frames are given as ``(H, W, C)``). ``close()`` releases the file.
    """

    def __init__(self, path: Path, data: Any, axes: str, pixel_size: PixelSize | None,
                 meta: dict[str, Any], close: Callable[[], None] | None = None) -> None:
        self.path, self.data, self.axes = path, data, axes
        self.pixel_size, self.meta = pixel_size, meta
        self._close = close

    def __len__(self) -> int:
        return int(self.data.shape[0]) if self.axes.startswith("N") else 1

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in (self.data.shape[1:] if self.axes.startswith("N")
                                      else self.data.shape))

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based) as stored; raises ``ImageFileError`` if it cannot be read."""
        if not 0 <= index < len(self):
            raise IndexError(f"{self.path}: frame {index} of {len(self)}")
        try:
            a = self.data[index] if self.axes.startswith("N") else self.data[...]
            if hasattr(a, "compute"):
                a = a.compute()
            return np.array(a)
        except Exception as exc:
            raise ImageFileError(f"{self.path}: frame {index} unreadable, the file may be "
                                 f"truncated ({type(exc).__name__}: {exc})") from None

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None

    def __enter__(self) -> FrameStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()




def check_declared_size(path: Path, shape: tuple[int, ...], max_pixels: int) -> None:
    """Refuse a file whose declared frames x height x width exceed ``max_pixels``."""
    pixels = math.prod(shape)
    if pixels > max_pixels:
        raise ImageFileError(
            f"{path}: declares {' x '.join(map(str, shape))} = {pixels} pixels, more than the "
            f"limit of {max_pixels}; refusing to decode it"
        )


def split_dataset(path: Path) -> tuple[Path, str | None]:
    """``file.h5#/group/data`` -> (``file.h5``, ``/group/data``); no ``#`` -> (path, None)."""
    text = str(path)
    if "#" not in text:
        return path, None
    file_part, dataset = text.split("#", 1)
    return Path(file_part), dataset or None


def import_extra(path: Path, module: str, what: str) -> Any:
    """Import an optional library or fail with one line naming the file and the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImageFileError(
            f"{path}: reading {what} files needs {module.split('.')[0]}; {EXTRA_HINT}"
        ) from None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__

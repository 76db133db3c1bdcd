"""Every image file is read here: one reader registry by suffix, one normalisation policy.

Reading is two steps, and every caller (folder pairs, folder content, mcnn-predict) uses both:

1. ``read_raw(path) -> RawImage``: the pixels exactly as stored (dtype kept), colour as
   ``(H, W, C)`` RGB(A), stacks as ``(N, H, W[, C])``, the physical pixel size when the file
   declares one (TIFF: OME, ImageJ, FEI/Thermo, Zeiss SEM or centimetre tags, see
   ``mcnn.data.tiff_meta``), and format metadata. The size the file
   declares is checked against ``max_pixels`` (default ``MAX_PIXELS`` = 2**28) before any pixel is
   decoded where the format allows it (TIFF, NPY, PNG, JPEG; other formats rely on OpenCV's own
   limit).
2. ``normalise(data, path)`` -> float32, with ONE policy (``policy_for(dtype)`` names the rule):

   ========================  =======================  ==========  ===================================
   stored dtype              float32 value            rule        why
   ========================  =======================  ==========  ===================================
   bool                      0.0 or 1.0               ``bool``    masks
   uint8                     v / 255                  ``unit8``   8-bit camera/display images
   uint16                    v / 65535                ``unit16``  16-bit camera images
   other integers (int8,     v, unscaled              ``counts``  detector counts (a DM3 STEM image
   int16, int32, uint32,                                          is uint32 electrons): kept as
   int64, uint64)                                                 counts, never wrapped or rescaled
   float16/32/64             v, unchanged             ``float``   quantitative data (phase in rad)
   ========================  =======================  ==========  ===================================

   Non-finite pixels (NaN, +-Inf) are refused with one line naming the file and how many there
   are; ``nonfinite="zero"`` sets them to 0 instead. Other dtypes (complex, structured) are refused.

``read_images(path) -> (N, C, H, W)`` float32 is both steps plus the layout rule of ``to_nchw``.

The readers live in one module per format family (``npy_io``, ``tiff_io``, ``raster_io``,
``microscopy`` for rosettasciio/ncempy, ``mrc_io``, ``hdf5_io``), each importing its library inside
its functions, so ``import mcnn`` loads none. Adding a format is one call:
``register_reader((".xyz",), read_xyz, open_xyz)`` with ``read_xyz(path, max_pixels) -> RawImage``
(and optionally a lazy ``open_xyz(path) -> FrameStack``); the policy, layout rule and errors are
shared (``mcnn.data.image_file``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

import numpy as np

from mcnn.data import hdf5_io, microscopy, mrc_io, npy_io, raster_io, tiff_io
from mcnn.data.image_file import (
    MAX_PIXELS,
    FrameStack,
    ImageFileError,
    RawImage,
    check_declared_size,
    split_dataset,
)
from mcnn.data.units import PixelSize
from mcnn.utils.atomic import atomic_path

__all__ = [
    "MAX_PIXELS", "FrameStack", "ImageFileError", "PixelSize", "RawImage", "check_declared_size",
    "drop_tia_emi", "image_suffixes", "list_images", "normalise", "open_frames", "policy_for", "read_images",
    "read_raw", "register_reader", "to_nchw", "write_image",
]

NonFinite = Literal["error", "zero"]

Reader = Callable[[Path, int], RawImage]
FrameOpener = Callable[[Path], FrameStack]
_READERS: dict[str, Reader] = {}
_OPENERS: dict[str, FrameOpener] = {}


def register_reader(
    suffixes: Iterable[str], fn: Reader, frames: FrameOpener | None = None
) -> None:
    """Read files with these suffixes (".tif", case-insensitive) with ``fn(path, max_pixels)``.

    ``frames(path) -> FrameStack`` opens the file lazily for series (``open_frames``); without it
    a series reads the whole file with ``fn``.
    """
    for suffix in suffixes:
        s = suffix.lower()
        if not s.startswith("."):
            raise ValueError(f"suffix {suffix!r} must start with a dot")
        _READERS[s] = fn
        if frames is not None:
            _OPENERS[s] = frames
        else:
            _OPENERS.pop(s, None)


def _resolve(path: str | Path) -> tuple[Path, Path]:
    """(path as given, file on disk): ``data.h5#/group/ds`` names a dataset inside ``data.h5``."""
    path = Path(path)
    file_part, _ = split_dataset(path)
    if file_part != path and file_part.suffix.lower() in _READERS:
        return path, file_part
    return path, path


def image_suffixes() -> tuple[str, ...]:
    """Every suffix a reader is registered for, sorted."""
    return tuple(sorted(_READERS))


def read_raw(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> RawImage:
    """Read one file as stored; raises ``ImageFileError`` (one line naming the file) on failure."""
    path, file = _resolve(path)
    reader = _READERS.get(file.suffix.lower())
    if reader is None:
        raise ImageFileError(
            f"{path}: unsupported file type; expected one of {', '.join(image_suffixes())}"
        )
    if not file.is_file():
        raise ImageFileError(f"{file}: no such file")
    return reader(path, max_pixels)


def open_frames(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> FrameStack:
    """Open one file as frames kept on disk where the format allows (MRC, NPY, TIFF, HDF5, DM,
    EMD, SER); other formats are read whole. Close it (or use ``with``) when done."""
    path, file = _resolve(path)
    suffix = file.suffix.lower()
    if suffix not in _READERS:
        raise ImageFileError(
            f"{path}: unsupported file type; expected one of {', '.join(image_suffixes())}"
        )
    if not file.is_file():
        raise ImageFileError(f"{file}: no such file")
    opener = _OPENERS.get(suffix)
    if opener is not None:
        stack = opener(path)
        check_declared_size(path, stack.frame_shape[:2], max_pixels)
        return stack
    raw = _READERS[suffix](path, max_pixels)
    axes = raw.axes
    data = raw.data
    if axes == "NCYX":
        data, axes = np.moveaxis(data, 1, -1), "NYXC"
    return FrameStack(path, data, axes, raw.pixel_size, raw.meta)


# -- the normalisation policy ---------------------------------------------------------------------

Rule = Literal["bool", "unit8", "unit16", "counts", "float"]


def policy_for(dtype: np.dtype | type) -> Rule:
    """The name of the rule ``normalise`` applies to a dtype (see the module docstring)."""
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return "bool"
    if dt == np.uint8:
        return "unit8"
    if dt == np.uint16:
        return "unit16"
    if np.issubdtype(dt, np.integer):
        return "counts"
    if np.issubdtype(dt, np.floating):
        return "float"
    raise TypeError(f"unsupported pixel type {dt}")


def normalise(data: np.ndarray, path: str | Path, nonfinite: NonFinite = "error") -> np.ndarray:
    """Stored pixels -> float32 by the one policy; non-finite values are refused or zeroed."""
    try:
        rule = policy_for(data.dtype)
    except TypeError:
        raise ImageFileError(
            f"{path}: unsupported pixel type {data.dtype}; expected bool, integer or float"
        ) from None
    if rule == "unit8":
        return data.astype(np.float32) / np.float32(255)
    if rule == "unit16":
        return data.astype(np.float32) / np.float32(65535)
    out = data.astype(np.float32)
    if rule == "float":
        bad = ~np.isfinite(out)  # float64 values beyond float32's range become inf here too
        n_bad = int(bad.sum())
        if n_bad:
            if nonfinite != "zero":
                raise ImageFileError(
                    f"{path}: {n_bad} of {out.size} pixels are NaN or infinite; expected finite "
                    "values"
                )
            out[bad] = 0.0
    return out


def to_nchw(
    raw: RawImage, channels_last: bool | None = None, nonfinite: NonFinite = "error"
) -> np.ndarray:
    """A raw image as float32 ``(N, C, H, W)``; colour alpha is dropped.

    ``channels_last`` overrides how a 3-D array is read: True as one ``(H, W, C)`` image (C in
    1, 3, 4), False as a stack of ``N`` single-channel frames; None keeps the reader's ``axes``.
    """
    a, axes = raw.data, raw.axes
    if a.ndim == 3 and channels_last is not None:
        if channels_last and a.shape[-1] not in (1, 3, 4):
            raise ImageFileError(
                f"{raw.path}: shape {a.shape} read channels-last needs a last axis of 1, 3 or 4"
            )
        axes = "YXC" if channels_last else "NYX"
    if axes.endswith("C") and raw.meta.get("alpha") and a.shape[-1] in (2, 4):
        a = a[..., :-1]
    layouts = {
        "YX": lambda x: x[None, None],
        "YXC": lambda x: np.moveaxis(x, -1, 0)[None],
        "NYX": lambda x: x[:, None],
        "NYXC": lambda x: np.moveaxis(x, -1, 1),
        "NCYX": lambda x: x,
    }
    if axes not in layouts or a.ndim != len(axes):
        raise ImageFileError(
            f"{raw.path}: {a.ndim}-D array with axes {axes!r}; expected 2-D (H, W), 3-D or 4-D images"
        )
    return normalise(np.ascontiguousarray(layouts[axes](a)), raw.path, nonfinite)


def read_images(
    path: str | Path,
    channels_last: bool | None = None,
    *,
    nonfinite: NonFinite = "error",
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """One file -> float32 ``(N, C, H, W)`` by the one policy. A 3-D TIFF/NPY is a stack of frames
    unless its axes say colour (TIFF) or ``channels_last`` says so (see ``to_nchw``)."""
    return to_nchw(read_raw(path, max_pixels=max_pixels), channels_last, nonfinite)


def list_images(folder: str | Path) -> list[Path]:
    """Files directly inside ``folder`` that a reader is registered for, sorted by name (a TIA
    ``.emi`` beside its ``.ser`` series left out: ``drop_tia_emi``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageFileError(f"{folder}: no such folder")
    return drop_tia_emi(sorted(p for p in folder.iterdir()
                               if p.is_file() and p.suffix.lower() in _READERS))


def drop_tia_emi(files: list[Path]) -> list[Path]:
    """``files`` without each TIA ``name.emi`` whose series ``name_1.ser``... are among them:
    those are read (with the .emi's metadata), so each series is denoised once."""
    series = {(p.parent, p.stem.lower().rsplit("_", 1)[0]) for p in files
              if p.suffix.lower() == ".ser"}
    return [p for p in files
            if not (p.suffix.lower() == ".emi" and (p.parent, p.stem.lower()) in series)]


register_reader((".npy",), npy_io.read_npy, npy_io.open_npy)
register_reader((".tif", ".tiff"), tiff_io.read_tiff, tiff_io.open_tiff)
register_reader((".png", ".jpg", ".jpeg", ".bmp", ".webp", ".pgm", ".ppm"), raster_io.read_with_opencv)
register_reader((".dm3", ".dm4", ".emd", ".ser", ".emi", ".hspy"), microscopy.read_rsciio,
                microscopy.open_rsciio)
register_reader((".mrc", ".mrcs"), mrc_io.read_mrc, mrc_io.open_mrc)
register_reader((".h5", ".hdf5"), hdf5_io.read_hdf5, hdf5_io.open_hdf5)


# -- writing ----------------------------------------------------------------------------------------


def write_image(path: str | Path, image: np.ndarray, pixel_size: PixelSize | None = None) -> Path:
    """Write ``(C, H, W)`` or ``(N, C, H, W)`` float32. TIFF/NPY keep float32 values exactly;
    PNG is 16-bit, clipped to [0, 1] (for viewing, not for quantitative outputs), 1 or 3 channels.

    ``pixel_size`` is written into TIFFs (resolution tags; grey images as ImageJ TIFFs with the
    unit, so Fiji shows the scale). Crash-safe: the file is written under a temporary name,
    fsynced and renamed into place, so a reader never sees half an image.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.asarray(image, dtype=np.float32)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".tif", ".tiff", ".png"):
        raise ImageFileError(f"{path}: unsupported output type; use .tif, .npy or .png")
    if suffix == ".png":
        if a.ndim == 4:
            if a.shape[0] != 1:
                raise ImageFileError(f"{path}: PNG holds one image; write a stack as TIFF or NPY")
            a = a[0]
        if a.ndim != 3 or a.shape[0] not in (1, 3):
            raise ImageFileError(f"{path}: PNG holds 1 or 3 channels, got shape {a.shape}")
    with atomic_path(path, keep_suffix=True) as tmp:  # same suffix: writers pick by it
        if suffix == ".npy":
            np.save(tmp, a)
        elif suffix == ".png":
            raster_io.write_png(tmp, a)
        else:
            tiff_io.write_tiff(tmp, a, pixel_size)
    return path

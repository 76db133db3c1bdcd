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

Adding a format (DM3/DM4 via rosettasciio, SER/EMD via ncempy, MRC via mrcfile) is one call:
``register_reader((".mrc",), read_mrc)`` with ``read_mrc(path, max_pixels) -> RawImage`` that
imports its library inside the function; the policy, layout rule and errors are shared.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mcnn.data.units import PixelSize
from mcnn.utils.atomic import atomic_path

MAX_PIXELS = 2**28
"""Default limit on the pixels a file may declare (all frames, channels not counted)."""

NonFinite = Literal["error", "zero"]


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
    text = str(path)
    if "#" in text:
        file_part = Path(text.split("#", 1)[0])
        if file_part.suffix.lower() in _READERS:
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


def check_declared_size(path: Path, shape: tuple[int, ...], max_pixels: int) -> None:
    """Refuse a file whose declared frames x height x width exceed ``max_pixels``."""
    pixels = math.prod(shape)
    if pixels > max_pixels:
        raise ImageFileError(
            f"{path}: declares {' x '.join(map(str, shape))} = {pixels} pixels, more than the "
            f"limit of {max_pixels}; refusing to decode it"
        )


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
    """Files directly inside ``folder`` that a reader is registered for, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageFileError(f"{folder}: no such folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _READERS)


# -- readers ----------------------------------------------------------------------------------------


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


def _read_npy(path: Path, max_pixels: int) -> RawImage:
    header, axes = _npy_memmap(path)
    shape = header.shape
    frames = shape[:-1] if axes == "YXC" else shape[:1] + shape[2:] if axes == "NCYX" else shape
    check_declared_size(path, tuple(frames), max_pixels)
    data = np.array(header)
    del header
    return RawImage(data, path, axes, meta={"format": "npy"})


def _tiff_pixel_size(tif: Any) -> tuple[PixelSize | None, dict[str, Any]]:
    """The pixel size a TIFF records by any convention ``mcnn.data.tiff_meta`` knows (OME,
    ImageJ, FEI/Thermo, Zeiss SEM, centimetre tags; inch tags are a display dpi, not a size)."""
    from mcnn.data.tiff_meta import tiff_pixel_size

    found, meta = tiff_pixel_size(tif)
    return (PixelSize(found.y, found.x, found.unit) if found else None), meta


def _read_tiff(path: Path, max_pixels: int) -> RawImage:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes = series.axes.upper()
            if "Y" not in axes or "X" not in axes:
                raise ValueError(f"series axes {axes!r} have no Y and X")
            check_declared_size(
                path, tuple(n for n, a in zip(series.shape, axes, strict=True) if a != "S"),
                max_pixels,
            )
            data = series.asarray()
            pixel_size, size_meta = _tiff_pixel_size(tif)
            page = tif.pages[0]
            meta = {"format": "tiff", "tiff_axes": axes,
                    "photometric": getattr(getattr(page, "photometric", None), "name", None),
                    **size_meta}
            alpha = len(getattr(page, "extrasamples", ()) or ()) > 0
    except ImageFileError:
        raise
    except Exception as exc:  # tifffile raises many types for corrupt files
        raise ImageFileError(f"{path}: not a readable TIFF ({exc})") from exc
    # Frames first (every axis that is not Y, X or samples, folded into one), then Y, X, samples.
    order = [i for i, a in enumerate(axes) if a not in "YXS"]
    order += [axes.index("Y"), axes.index("X")] + ([axes.index("S")] if "S" in axes else [])
    data = data.transpose(order)
    lead = len(order) - (3 if "S" in axes else 2)
    if lead:
        data = data.reshape((-1, *data.shape[lead:]))
    out_axes = ("N" if lead else "") + "YX" + ("C" if "S" in axes else "")
    meta["alpha"] = alpha and out_axes.endswith("C")
    return RawImage(data, path, out_axes, pixel_size, meta)


def _png_size(head: bytes) -> tuple[int, int] | None:
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return height, width


def _jpeg_size(path: Path) -> tuple[int, int] | None:
    """(H, W) from the first start-of-frame marker, without decoding."""
    with open(path, "rb") as f:
        if f.read(2) != b"\xff\xd8":
            return None
        while True:
            byte = f.read(1)
            while byte and byte != b"\xff":
                byte = f.read(1)
            while byte == b"\xff":
                byte = f.read(1)
            if not byte:
                return None
            marker = byte[0]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                continue
            length_bytes = f.read(2)
            if len(length_bytes) < 2:
                return None
            (length,) = struct.unpack(">H", length_bytes)
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                sof = f.read(5)
                if len(sof) < 5:
                    return None
                _, height, width = struct.unpack(">BHH", sof)
                return height, width
            f.seek(length - 2, 1)


def _read_with_opencv(path: Path, max_pixels: int) -> RawImage:
    suffix = path.suffix.lower()
    declared = None
    if suffix == ".png":
        with open(path, "rb") as f:
            declared = _png_size(f.read(24))
    elif suffix in (".jpg", ".jpeg"):
        declared = _jpeg_size(path)
    if declared is not None:
        check_declared_size(path, declared, max_pixels)

    import cv2

    a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise ImageFileError(f"{path}: not a readable {suffix[1:].upper()} image")
    meta: dict[str, Any] = {"format": suffix[1:]}
    if a.ndim == 2:
        return RawImage(a, path, "YX", meta=meta)
    if a.shape[-1] == 4:
        a, meta["alpha"] = cv2.cvtColor(a, cv2.COLOR_BGRA2RGBA), True
    elif a.shape[-1] == 3:
        a = cv2.cvtColor(a, cv2.COLOR_BGR2RGB)
    return RawImage(a, path, "YXC", meta=meta)


def _open_npy(path: Path) -> FrameStack:
    data, axes = _npy_memmap(path)
    if axes == "NCYX" and data.shape[1] == 1:
        data, axes = data[:, 0], "NYX"
    if axes not in ("YX", "YXC", "NYX"):
        raise ImageFileError(f"{path}: array of shape {data.shape}; expected (H, W) or (N, H, W) "
                             "frames")
    return FrameStack(path, data, axes, None, {"format": "npy", "source_file": str(path)})


def _open_tiff(path: Path) -> FrameStack:
    """A TIFF stack frame by frame: a memory map when the pixels are stored contiguously and
    uncompressed, otherwise one page per frame."""
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
        series = tif.series[0]
        axes = series.axes.upper()
        pixel_size, size_meta = _tiff_pixel_size(tif)
    except Exception as exc:
        raise ImageFileError(f"{path}: not a readable TIFF ({exc})") from exc
    meta = {"format": "tiff", "tiff_axes": axes, "source_file": str(path), **size_meta}
    frame_axes = [a for a in axes if a not in "YXS"]
    if "S" in axes or axes[-2:] != "YX" or len(frame_axes) > 1 or len(series.pages) < 2:
        tif.close()
        raw = _read_tiff(path, MAX_PIXELS)
        return FrameStack(path, raw.data, raw.axes, raw.pixel_size, raw.meta)
    try:
        data: Any = tifffile.memmap(path, mode="r")
        tif.close()
        return FrameStack(path, data.reshape((-1, *data.shape[-2:])), "NYX", pixel_size, meta)
    except Exception:
        pages = series.pages

        class _Pages:
            shape = (len(pages), *series.shape[-2:])

            def __getitem__(self, i: int) -> np.ndarray:
                page = pages[i]
                if page is None:
                    raise ImageFileError(f"{path}: frame {i} missing")
                return page.asarray()

        return FrameStack(path, _Pages(), "NYX", pixel_size, meta, close=tif.close)


register_reader((".npy",), _read_npy, _open_npy)
register_reader((".tif", ".tiff"), _read_tiff, _open_tiff)
register_reader((".png", ".jpg", ".jpeg", ".bmp", ".webp", ".pgm", ".ppm"), _read_with_opencv)


def _microscopy(suffixes: tuple[str, ...]) -> None:
    """Register a microscope format whose reader lives in ``mcnn.data.microscopy`` (imported on
    first use, so that ``import mcnn`` loads no file-format library)."""

    def entry(kind: int) -> Any:
        def call(*args: Any) -> Any:
            from mcnn.data import microscopy

            return microscopy.READERS[suffixes][kind](*args)

        return call

    register_reader(suffixes, entry(0), entry(1))


for _group in ((".dm3", ".dm4", ".emd", ".ser", ".hspy"), (".mrc", ".mrcs"), (".h5", ".hdf5")):
    _microscopy(_group)


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
        _write_by_suffix(tmp, a, suffix, pixel_size)
    return path


def _write_tiff(path: Path, a: np.ndarray, pixel_size: PixelSize | None) -> None:
    import tifffile

    colour = False
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    elif a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    elif a.ndim == 3 and a.shape[0] == 3:
        a, colour = np.moveaxis(a, 0, -1), True
    if pixel_size is None:
        # frames of a stack are pages, never colour planes
        tifffile.imwrite(path, a, photometric="rgb" if colour else "minisblack")
        return
    resolution = (1.0 / pixel_size.x, 1.0 / pixel_size.y)
    if not colour and a.ndim in (2, 3):
        unit = "micron" if pixel_size.unit == "um" else pixel_size.unit
        axes = "YX" if a.ndim == 2 else "ZYX"
        tifffile.imwrite(
            path, a, imagej=True, resolution=resolution, metadata={"unit": unit, "axes": axes}
        )
    elif pixel_size.unit == "um":  # ImageJ TIFFs hold no float RGB: plain tags, in centimetres
        tifffile.imwrite(
            path, a, photometric="rgb" if colour else "minisblack",
            resolution=(1e4 / pixel_size.x, 1e4 / pixel_size.y), resolutionunit="CENTIMETER",
        )
    else:
        tifffile.imwrite(path, a, photometric="rgb" if colour else "minisblack")


def _write_by_suffix(path: Path, a: np.ndarray, suffix: str, pixel_size: PixelSize | None) -> None:
    if suffix == ".npy":
        np.save(path, a)
    elif suffix in (".tif", ".tiff"):
        _write_tiff(path, a, pixel_size)
    else:
        import cv2

        u16 = (np.clip(a, 0, 1) * 65535 + 0.5).astype(np.uint16)
        u16 = u16[0] if u16.shape[0] == 1 else cv2.cvtColor(np.moveaxis(u16, 0, -1), cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(path), u16):
            raise ImageFileError(f"{path}: could not be written")

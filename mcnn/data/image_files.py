"""Reading and writing the image files users bring: PNG, TIFF (incl. stacks) and NPY.

Arrays come back as float32 ``(N, C, H, W)``; integer images are scaled to [0, 1] (8- and 16-bit),
float images keep their values (quantitative data such as phase must not be rescaled).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mcnn.utils.atomic import atomic_path

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".npy", ".jpg", ".jpeg", ".bmp")


class ImageFileError(ValueError):
    """A file that cannot be used as an image; the message names it and says what was expected."""


def _to_float(a: np.ndarray, path: Path) -> np.ndarray:
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    if a.dtype == bool:
        return a.astype(np.float32)
    if np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float32)
    raise ImageFileError(f"{path}: unsupported pixel type {a.dtype}; expected integer or float")


def _as_nchw(a: np.ndarray, path: Path, channels_last: bool) -> np.ndarray:
    if a.ndim == 2:
        return a[None, None]
    if a.ndim == 3:
        if channels_last and a.shape[-1] in (1, 3, 4):
            return np.moveaxis(a, -1, 0)[None]
        return a[:, None]  # a stack of single-channel frames
    if a.ndim == 4:
        return np.moveaxis(a, -1, 1) if channels_last and a.shape[-1] in (1, 3, 4) else a
    raise ImageFileError(f"{path}: {a.ndim}-D array; expected 2-D (H, W), 3-D or 4-D images")


def read_images(path: Path, channels_last: bool | None = None) -> np.ndarray:
    """One file -> float32 ``(N, C, H, W)``. A 3-D TIFF/NPY is a stack of single-channel frames.

    ``channels_last``: how to read a 3-D TIFF/NPY. None guesses: a last axis of 3 or 4 (RGB/RGBA)
    on a TIFF, or of 1/3/4 on an NPY whose first axis is longer than 4, is the channel axis, so a
    ``(H, W, 3)`` array saved with NumPy is not taken for H frames 3 px wide. True/False force it.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise ImageFileError(f"{path}: not a readable .npy array ({exc})") from exc
        if channels_last is None:
            channels_last = a.ndim == 3 and a.shape[-1] in (1, 3, 4) and a.shape[0] > 4
        return _to_float(_as_nchw(a, path, channels_last=channels_last), path)
    if suffix in (".tif", ".tiff"):
        import tifffile

        try:
            a = tifffile.imread(path)
        except Exception as exc:
            raise ImageFileError(f"{path}: not a readable TIFF ({exc})") from exc
        if channels_last is None:
            channels_last = a.ndim >= 3 and a.shape[-1] in (3, 4)
        return _to_float(_as_nchw(a, path, channels_last=channels_last), path)
    if suffix in IMAGE_SUFFIXES:
        import cv2

        a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if a is None:
            raise ImageFileError(f"{path}: not a readable {suffix[1:].upper()} image")
        if a.ndim == 3:
            a = cv2.cvtColor(a, cv2.COLOR_BGRA2RGB if a.shape[-1] == 4 else cv2.COLOR_BGR2RGB)
        return _to_float(_as_nchw(a, path, channels_last=True), path)
    raise ImageFileError(f"{path}: unsupported file type; expected one of {', '.join(IMAGE_SUFFIXES)}")


def write_image(path: Path, image: np.ndarray) -> Path:
    """Write ``(C, H, W)`` or ``(N, C, H, W)`` float32. TIFF/NPY keep float32 values exactly;
    PNG is 16-bit, clipped to [0, 1] (for viewing, not for quantitative outputs), 1 or 3 channels.

    Crash-safe: the file is written under a temporary name, fsynced and renamed into place, so a
    reader never sees half an image.
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
        _write_by_suffix(tmp, a, suffix)
    return path


def _write_by_suffix(path: Path, a: np.ndarray, suffix: str) -> None:
    if suffix == ".npy":
        np.save(path, a)
    elif suffix in (".tif", ".tiff"):
        import tifffile

        photometric = "minisblack"  # frames of a stack are pages, never colour planes
        if a.ndim == 4 and a.shape[1] == 1:
            a = a[:, 0]
        elif a.ndim == 3 and a.shape[0] == 1:
            a = a[0]
        elif a.ndim == 3 and a.shape[0] == 3:
            a, photometric = np.moveaxis(a, 0, -1), "rgb"
        tifffile.imwrite(path, a, photometric=photometric)
    else:
        import cv2

        u16 = (np.clip(a, 0, 1) * 65535 + 0.5).astype(np.uint16)
        u16 = u16[0] if u16.shape[0] == 1 else cv2.cvtColor(np.moveaxis(u16, 0, -1), cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(path), u16):
            raise ImageFileError(f"{path}: could not be written")


def list_images(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageFileError(f"{folder}: no such folder")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

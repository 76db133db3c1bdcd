"""Camera and display images (PNG, JPEG, BMP, WebP, PGM/PPM) through OpenCV, with the size a PNG
or JPEG declares checked before any pixel is decoded; PNG written as 16-bit for viewing.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from mcnn.data.image_file import ImageFileError, RawImage, check_declared_size


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


def read_with_opencv(path: Path, max_pixels: int) -> RawImage:
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


def write_png(path: Path, a: np.ndarray) -> None:
    """``(C, H, W)`` float32 in [0, 1] (clipped) as a 16-bit grey or RGB PNG."""
    import cv2

    u16 = (np.clip(a, 0, 1) * 65535 + 0.5).astype(np.uint16)
    u16 = u16[0] if u16.shape[0] == 1 else cv2.cvtColor(np.moveaxis(u16, 0, -1), cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), u16):
        raise ImageFileError(f"{path}: could not be written")

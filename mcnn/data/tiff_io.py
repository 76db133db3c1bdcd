"""TIFF files and stacks (ImageJ, OME, microscope vendors' TIFFs) through tifffile: read whole,
opened lazily frame by frame, and written with the pixel size where one is known.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mcnn.data.image_file import (
    MAX_PIXELS,
    FrameStack,
    ImageFileError,
    RawImage,
    check_declared_size,
)
from mcnn.data.units import PixelSize


def _tiff_pixel_size(tif: Any) -> tuple[PixelSize | None, dict[str, Any]]:
    """The pixel size a TIFF records by any convention ``mcnn.data.tiff_meta`` knows (OME,
    ImageJ, FEI/Thermo, Zeiss SEM, centimetre tags; inch tags are a display dpi, not a size)."""
    from mcnn.data.tiff_meta import tiff_pixel_size

    found, meta = tiff_pixel_size(tif)
    return (PixelSize(found.y, found.x, found.unit) if found else None), meta


def read_tiff(path: Path, max_pixels: int) -> RawImage:
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


def open_tiff(path: Path) -> FrameStack:
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
        raw = read_tiff(path, MAX_PIXELS)
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


def write_tiff(path: Path, a: np.ndarray, pixel_size: PixelSize | None) -> None:
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

"""HDF5 files through h5py: one 2-D or 3-D dataset, found alone or named as ``file.h5#/group/ds``,
sliced lazily, with the pixel size from the attributes the common conventions use. A whole file
that HyperSpy wrote goes to rosettasciio instead (``mcnn.data.microscopy``), with its axes."""

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
    split_dataset,
)
from mcnn.data.microscopy import open_rsciio, read_rsciio
from mcnn.data.units import PixelSize, canonical_pixel_size


def _h5_image_datasets(h5: Any) -> list[str]:
    import h5py

    found: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and obj.ndim in (2, 3) and obj.dtype.kind in "biuf" \
                and min(obj.shape[-2:]) > 1:
            found.append("/" + name)

    h5.visititems(visit)
    return found


def _h5_pixel_size(ds: Any) -> PixelSize | None:
    attrs = ds.attrs
    if "element_size_um" in attrs:  # Fiji/ilastik convention: (z,) y, x in micrometres
        es = np.atleast_1d(np.asarray(attrs["element_size_um"], dtype=float))
        if es.size >= 2:
            return canonical_pixel_size(float(es[-2]), float(es[-1]), "um")
    for key in ("pixel_size_pm", "pixel_size_nm", "pixel_size_um"):
        if key in attrs:
            v = np.atleast_1d(np.asarray(attrs[key], dtype=float))
            return canonical_pixel_size(float(v[0]), float(v[-1]), key.rsplit("_", 1)[1])
    if "pixel_size" in attrs:
        v = np.atleast_1d(np.asarray(attrs["pixel_size"], dtype=float))
        unit = attrs.get("pixel_size_unit", attrs.get("unit", ""))
        unit = unit.decode() if isinstance(unit, bytes) else str(unit)
        return canonical_pixel_size(float(v[0]), float(v[-1]), unit)
    return None


def _h5_open(path: Path) -> tuple[Any, Any, str] | None:
    """(open file, image dataset, its name); None for a whole file (no ``#dataset``) that HyperSpy
    wrote, which is read with its axes and metadata through rosettasciio instead of as a bare
    dataset without a pixel size."""
    h5py = import_extra(path, "h5py", "HDF5")
    file_path, dataset = split_dataset(path)
    try:
        h5 = h5py.File(file_path, "r")
    except Exception as exc:
        raise ImageFileError(f"{file_path}: not a readable HDF5 file ({first_line(exc)})") from None
    try:
        if dataset is None and str(h5.attrs.get("file_format", "")) == "HyperSpy":
            h5.close()
            return None
        if dataset is None:
            names = _h5_image_datasets(h5)
            if not names:
                raise ImageFileError(f"{file_path}: no 2-D or 3-D numeric dataset; not an image")
            if len(names) > 1:
                shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
                raise ImageFileError(f"{file_path}: {len(names)} image datasets ({shown}); name "
                                     f"one as {file_path.name}#{names[0]}")
            dataset = names[0]
        if dataset not in h5 or not isinstance(h5[dataset], h5py.Dataset):
            raise ImageFileError(f"{file_path}: no dataset {dataset!r}")
        ds = h5[dataset]
        if ds.ndim not in (2, 3) or ds.dtype.kind not in "biuf":
            raise ImageFileError(f"{file_path}#{dataset}: {ds.ndim}-D {ds.dtype} dataset; not an "
                                 "image (expected 2-D, or 3-D frames first)")
    except Exception:
        h5.close()
        raise
    return h5, ds, dataset


def _h5_meta(path: Path, ds: Any, dataset: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"format": "hdf5", "reader": "h5py", "source_file": str(path),
                            "dataset": dataset, "signal": dataset.rsplit("/", 1)[-1]}
    for key in ("dwell_time_s", "frame_time_s", "acquisition_time", "detector"):
        if key in ds.attrs:
            v = ds.attrs[key]
            meta[key] = v.decode() if isinstance(v, bytes) else (
                v.item() if hasattr(v, "item") else v)
    return meta


def read_hdf5(path: Path, max_pixels: int) -> RawImage:
    opened = _h5_open(path)
    if opened is None:
        return read_rsciio(path, max_pixels)
    h5, ds, dataset = opened
    file_path, _ = split_dataset(path)
    try:
        check_declared_size(path, tuple(ds.shape), max_pixels)
        try:
            data = ds[()]
        except Exception as exc:
            raise ImageFileError(f"{path}: pixel data unreadable, the file may be truncated "
                                 f"({first_line(exc)})") from None
        return RawImage(data, path, "YX" if ds.ndim == 2 else "NYX", _h5_pixel_size(ds),
                        _h5_meta(file_path, ds, dataset))
    finally:
        h5.close()


def open_hdf5(path: Path) -> FrameStack:
    opened = _h5_open(path)
    if opened is None:
        return open_rsciio(path)
    h5, ds, dataset = opened
    file_path, _ = split_dataset(path)
    return FrameStack(path, ds, "YX" if ds.ndim == 2 else "NYX", _h5_pixel_size(ds),
                      _h5_meta(file_path, ds, dataset), close=h5.close)

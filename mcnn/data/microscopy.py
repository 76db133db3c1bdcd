"""Microscope files read through rosettasciio and ncempy (DM, EMD, SER, HyperSpy), registered in the
one registry of ``mcnn.data.image_io`` beside MRC (``mcnn.data.mrc_io``) and HDF5
(``mcnn.data.hdf5_io``).

Formats and the established library each one goes through (imported inside the functions, so
``import mcnn`` loads none of them; they are the ``[microscopy]`` extra):

===================  ==============  =============================================================
suffix               library         what is read
===================  ==============  =============================================================
``.dm3``, ``.dm4``   rosettasciio    Gatan DigitalMicrograph images and stacks
``.emd``             rosettasciio    Velox EMD and Berkeley (NCEM) EMD, both HDF5
``.ser``, ``.emi``   rosettasciio    FEI/TIA series; the ``.emi`` beside a ``.ser`` supplies its
                                     metadata, and an ``.emi`` opened alone reads its series
``.hspy``            rosettasciio    HyperSpy's own HDF5 files (what ``s.save()`` writes; older
                                     ones named ``.hdf5`` are recognised by their header)
``.mrc``, ``.mrcs``  mrcfile         MRC images and stacks (voxel size in angstrom)
``.h5``, ``.hdf5``   h5py            one dataset, named as ``file.h5#/group/dataset``
===================  ==============  =============================================================

A file with several image signals (a Velox EMD with HAADF, DF and BF) gives its HAADF image, or
the one named as ``file.emd#DF4`` (its title, or its index).

Every reader returns a :class:`~mcnn.data.image_file.RawImage` with the stored dtype, axes ``YX`` or
``NYX`` (navigation axes folded into ``N``), the pixel size **with an honest unit**: lengths in
``pm``, ``nm`` or ``um``, whichever keeps the value between 0.1 and 10^4 (12.7 pm, 3.14 nm; convert
with ``PixelSize.to``; ``mcnn.data.units.canonical_pixel_size``), a non-length unit such as
``1/nm`` kept as written, and, in ``meta``: ``format``, ``source_file``, ``signal`` (title /
detector name), ``detector``, ``dwell_time_s``, ``frame_time_s`` and ``acquisition_time`` (ISO
8601) where the file has them. A file holding no 2-D image (an EELS
spectrum) is refused as "not an image"; a truncated or corrupt file is one line naming it.

Each format also has a lazy opener (``open_frames``) that keeps the pixels on disk: memory maps
(MRC, NPY), HDF5 slicing or dask arrays (rosettasciio ``lazy=True``), so a series of many GB is
read one frame at a time (``mcnn.data.series``). Times and detector names come from the vendor's
metadata tree (``mcnn.data.microscope_meta``).
"""

from __future__ import annotations

import logging
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
from mcnn.data.microscope_meta import time_meta
from mcnn.data.units import PixelSize, canonical_pixel_size

logger = logging.getLogger(__name__)


# -- rosettasciio formats (DM3/DM4, EMD, SER) -----------------------------------------------------

_RSCIIO = {
    ".dm3": ("digitalmicrograph", "dm", "Gatan DigitalMicrograph"),
    ".dm4": ("digitalmicrograph", "dm", "Gatan DigitalMicrograph"),
    ".emd": ("emd", "velox", "EMD"),
    ".ser": ("tia", "tia", "FEI/TIA SER"),
    ".emi": ("tia", "tia", "FEI/TIA EMI"),
    ".hspy": ("hspy", "hspy", "HyperSpy HDF5"),
}


def _rsciio_suffix(path: Path) -> str:
    """The ``_RSCIIO`` key of ``path``: its suffix, except HyperSpy's files saved as ``.hdf5``
    (older HyperSpy versions), which are read as ``.hspy``."""
    suffix = path.suffix.lower()
    return ".hspy" if suffix in (".h5", ".hdf5") else suffix


def _rsciio_signals(path: Path) -> tuple[list[dict], str, str]:
    module, fmt, what = _RSCIIO[_rsciio_suffix(path)]
    reader = import_extra(path, f"rsciio.{module}", what).file_reader
    try:
        signals = reader(str(path), lazy=True)
    except ImageFileError:
        raise
    except Exception as exc:  # the readers raise many types on truncated or foreign files
        raise ImageFileError(f"{path}: not a readable {what} file ({first_line(exc)})") from None
    if isinstance(signals, dict):
        signals = [signals]
    return signals, fmt, what


def _describe(signal: dict) -> str:
    sig = [ax for ax in signal["axes"] if not ax.get("navigate", False)]
    kind = (signal.get("metadata", {}).get("Signal", {}) or {}).get("signal_type") or ""
    dims = " x ".join(str(int(ax["size"])) for ax in sig) or "0"
    name = f"{kind} " if kind else ""
    return f"{len(sig)}-D {name}signal of {dims} channels" if len(sig) == 1 else (
        f"{len(sig)}-D {name}signal ({dims})"
    )


def _title(signal: dict) -> str:
    return str((signal.get("metadata", {}).get("General", {}) or {}).get("title", "") or "")


def _pick_image(path: Path, signals: list[dict], selector: str | None = None
                ) -> tuple[int, dict]:
    """The image signal named by ``selector`` (a title such as HAADF, or an index), else the
    first HAADF image, else the first 2-D image."""
    images = [(i, s) for i, s in enumerate(signals)
              if len([ax for ax in s["axes"] if not ax.get("navigate", False)]) == 2]
    if selector is not None:
        for i, s in images:
            if selector.lower() == _title(s).lower() or selector == str(i):
                return i, s
        names = ", ".join(f"{i}:{_title(s) or '?'}" for i, s in images) or "none"
        raise ImageFileError(f"{path}: no image signal {selector!r}; the file has {names}")
    for i, s in images:
        if "haadf" in _title(s).lower():
            return i, s
    if images:
        return images[0]
    found = "; ".join(_describe(s) for s in signals) or "no data"
    raise ImageFileError(f"{path}: not an image (it holds a {found}); expected a 2-D image or a "
                         "stack of 2-D frames")


def _rsciio_image(path: Path) -> tuple[Any, str, PixelSize | None, dict[str, Any]]:
    """(lazy array in (N,)H,W order, axes, pixel size, meta) of the first image signal."""
    spec = path
    path, selector = split_dataset(path)
    signals, fmt, what = _rsciio_signals(path)
    index, s = _pick_image(spec, signals, selector)
    data = s["data"]
    axes = s["axes"]
    if len(axes) != data.ndim:
        raise ImageFileError(f"{path}: {data.ndim}-D data with {len(axes)} axes; cannot tell "
                             "rows from columns")
    sig = [i for i, ax in enumerate(axes) if not ax.get("navigate", False)]
    nav = [i for i, ax in enumerate(axes) if ax.get("navigate", False)]
    data = data.transpose(nav + sig)
    n = int(np.prod([data.shape[i] for i in range(len(nav))])) if nav else 1
    h, w = data.shape[-2:]
    data = data.reshape((n, h, w)) if n > 1 else data.reshape((h, w))
    ay, ax_ = axes[sig[0]], axes[sig[1]]
    unit = ay.get("units") or ax_.get("units")
    pixel_size = canonical_pixel_size(float(ay.get("scale", 1)), float(ax_.get("scale", 1)),
                                      str(unit) if unit else None)
    md, om = s.get("metadata", {}) or {}, s.get("original_metadata", {}) or {}
    if fmt == "tia" and path.suffix.lower() == ".ser":
        om = {**om, **_emi_metadata(path)}
    title = (md.get("General", {}) or {}).get("title") or ""
    if fmt == "velox" and "Core" not in om and "Detectors" not in om:
        fmt = "emd"  # Berkeley EMD (no Velox metadata tree)
    meta: dict[str, Any] = {"format": fmt, "reader": f"rosettasciio.{_RSCIIO[_rsciio_suffix(path)][0]}",
                            "source_file": str(path), "signal_index": index}
    try:
        meta.update(time_meta(fmt, md, om))
    except Exception as exc:  # metadata is a bonus: a strange tree must not lose the pixels
        logger.debug("%s: metadata not understood (%s)", path, exc)
    meta["signal"] = str(title or meta.get("detector") or "")
    if len(signals) > 1:
        meta["signals"] = [_title(x) for x in signals]
    return data, ("NYX" if n > 1 else "YX"), pixel_size, meta


def _emi_metadata(ser: Path) -> dict:
    """The metadata tree of the ``.emi`` beside a ``name_1.ser`` (dwell and frame time live
    there); empty when there is none."""
    stem = ser.stem.rsplit("_", 1)[0]
    emi = ser.with_name(stem + ".emi")
    if not emi.is_file():
        return {}
    try:
        from rsciio.tia import file_reader

        signals = file_reader(str(emi), lazy=True)
        return dict(signals[0].get("original_metadata", {}) or {})
    except Exception as exc:
        logger.debug("%s: metadata not read (%s)", emi, exc)
        return {}


def _is_velox(path: Path) -> bool:
    """Velox EMD has a top-level ``Data`` group; Berkeley EMD has ``version_major`` attributes
    and ``data/<name>/data`` groups (read with ncempy, which keeps the stored axis order:
    rosettasciio transposes Berkeley 2-D data)."""
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            return "Data" in h5 or "version_major" not in h5.attrs
    except Exception:
        return True  # let rosettasciio produce the error message


def _open_berkeley(path: Path) -> FrameStack:
    emd = import_extra(path, "ncempy.io.emd", "Berkeley EMD")
    try:
        f = emd.fileEMD(str(path), readonly=True)
    except Exception as exc:
        raise ImageFileError(f"{path}: not a readable Berkeley EMD file ({first_line(exc)})") \
            from None
    try:
        for group in f.list_emds:
            data = group["data"]
            if data.ndim in (2, 3) and min(data.shape[-2:]) > 1:
                break
        else:
            raise ImageFileError(f"{path}: not an image (no 2-D or 3-D EMD data group)")
        dims = [group[f"dim{i + 1}"] for i in range(data.ndim)]
        step = [float(d[1] - d[0]) if d.shape[0] > 1 else 1.0 for d in dims[-2:]]
        units = [d.attrs.get("units", b"") for d in dims[-2:]]
        unit = units[-1].decode() if isinstance(units[-1], bytes) else str(units[-1])
        pixel_size = canonical_pixel_size(step[0], step[1], unit)
    except Exception as exc:
        f.file_hdl.close()
        if isinstance(exc, ImageFileError):
            raise
        raise ImageFileError(f"{path}: not a readable Berkeley EMD file ({first_line(exc)})") \
            from None
    meta = {"format": "emd", "reader": "ncempy.io.emd", "source_file": str(path),
            "signal": group.name.rsplit("/", 1)[-1]}
    return FrameStack(path, data, "YX" if data.ndim == 2 else "NYX", pixel_size, meta,
                      close=lambda: f.file_hdl.close())  # keeps f (which closes on GC) alive


def read_rsciio(path: Path, max_pixels: int) -> RawImage:
    """DM3/DM4, Velox/Berkeley EMD, SER or HyperSpy HDF5, decoded fully (``open_rsciio`` for
    series).
    ``file.emd#HAADF`` (a signal title, or its index) picks one of several signals."""
    if path.suffix.lower() == ".emd" and not _is_velox(path):
        with _open_berkeley(path) as stack:
            check_declared_size(path, tuple(stack.data.shape), max_pixels)
            return RawImage(np.asarray(stack.data[()]), path, stack.axes, stack.pixel_size,
                            stack.meta)
    data, axes, pixel_size, meta = _rsciio_image(path)
    check_declared_size(path, tuple(data.shape), max_pixels)
    try:
        array = np.asarray(data.compute() if hasattr(data, "compute") else data)
    except Exception as exc:
        raise ImageFileError(f"{path}: pixel data unreadable, the file may be truncated "
                             f"({first_line(exc)})") from None
    return RawImage(array, path, axes, pixel_size, meta)


def open_rsciio(path: Path) -> FrameStack:
    if path.suffix.lower() == ".emd" and not _is_velox(path):
        return _open_berkeley(path)
    data, axes, pixel_size, meta = _rsciio_image(path)
    return FrameStack(path, data, axes, pixel_size, meta)

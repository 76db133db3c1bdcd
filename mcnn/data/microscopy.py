"""Microscope file readers, registered in the one registry of ``mcnn.data.image_io``.

Formats and the established library each one goes through (imported inside the functions, so
``import mcnn`` loads none of them; they are the ``[microscopy]`` extra):

===================  ==============  =============================================================
suffix               library         what is read
===================  ==============  =============================================================
``.dm3``, ``.dm4``   rosettasciio    Gatan DigitalMicrograph images and stacks
``.emd``             rosettasciio    Velox EMD and Berkeley (NCEM) EMD, both HDF5
``.ser``             rosettasciio    FEI/TIA series; the ``.emi`` beside it supplies calibrations
``.hspy``            rosettasciio    HyperSpy's own HDF5 files (what ``s.save()`` writes; older
                                     ones named ``.hdf5`` are recognised by their header)
``.mrc``, ``.mrcs``  mrcfile         MRC images and stacks (voxel size in angstrom)
``.h5``, ``.hdf5``   h5py            one dataset, named as ``file.h5#/group/dataset``
===================  ==============  =============================================================

A file with several image signals (a Velox EMD with HAADF, DF and BF) gives its HAADF image, or
the one named as ``file.emd#DF4`` (its title, or its index).

Every reader returns a :class:`~mcnn.data.image_io.RawImage` with the stored dtype, axes ``YX`` or
``NYX`` (navigation axes folded into ``N``), the pixel size **with an honest unit**: lengths in
``pm``, ``nm`` or ``um``, whichever keeps the value between 0.1 and 10^4 (12.7 pm, 3.14 nm; convert
with ``PixelSize.to``), a non-length unit such as ``1/nm`` kept as written, and, in ``meta``: ``format``, ``source_file``,
``signal`` (title / detector name), ``detector``, ``dwell_time_s``, ``frame_time_s`` and
``acquisition_time`` (ISO 8601) where the file has them. A file holding no 2-D image (an EELS
spectrum) is refused as "not an image"; a truncated or corrupt file is one line naming it.

Each format also has a lazy opener (``open_frames``) that keeps the pixels on disk: memory maps
(MRC, NPY), HDF5 slicing or dask arrays (rosettasciio ``lazy=True``), so a series of many GB is
read one frame at a time (``mcnn.data.series``).
"""

from __future__ import annotations

import datetime as _dt
import importlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mcnn.data.image_io import (
    FrameStack,
    ImageFileError,
    PixelSize,
    RawImage,
    check_declared_size,
)
from mcnn.data.units import nm_per

logger = logging.getLogger(__name__)

EXTRA_HINT = 'pip install "mcnn-imaging[microscopy]"'


def _import(path: Path, module: str, what: str) -> Any:
    """Import an optional library or fail with one line naming the file and the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImageFileError(
            f"{path}: reading {what} files needs {module.split('.')[0]}; {EXTRA_HINT}"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def canonical_pixel_size(
    scale_y: float, scale_x: float, unit: str | None
) -> PixelSize | None:
    """A pixel size from two axis scales and a unit: lengths in pm/nm/um, others kept as given.

    Uncalibrated axes (no unit, or "pixel") give None. The unit is chosen so that the value is
    readable (>= 0.1): 0.0127 nm becomes 12.7 pm, 3140 nm stays 3140 nm below 10 um.
    """
    u = (unit or "").strip()
    if not u or u.lower() in ("px", "pixel", "pixels", "<auto>") or not (scale_y > 0 and scale_x > 0):
        return None
    factor = nm_per(u)
    if factor is None:
        return PixelSize(float(scale_y), float(scale_x), u)
    y_nm, x_nm = scale_y * factor, scale_x * factor
    if max(y_nm, x_nm) < 0.1:
        return PixelSize(y_nm * 1e3, x_nm * 1e3, "pm")
    if max(y_nm, x_nm) >= 1e4:
        return PixelSize(y_nm * 1e-3, x_nm * 1e-3, "um")
    return PixelSize(y_nm, x_nm, "nm")


# -- metadata helpers ---------------------------------------------------------------------------


def _walk(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _walk(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, tree


def _find(tree: Any, *suffixes: str) -> Any:
    """The first value whose dotted key path ends with one of ``suffixes`` (case-insensitive)."""
    items = list(_walk(tree))
    for suffix in suffixes:
        s = suffix.lower()
        for key, value in items:
            k = key.lower()
            if (k == s or k.endswith("." + s)) and _present(value):
                return value
    return None


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, np.ndarray):
        return value.size > 0
    if isinstance(value, (str, bytes, list, tuple)):
        return len(value) > 0
    return True


def _float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _iso_from_epoch(value: Any) -> str | None:
    f = _float(value)
    if f is None or f <= 0:
        return None
    return _dt.datetime.fromtimestamp(f, tz=_dt.timezone.utc).isoformat()


# Where each format keeps its times and detector (dotted key-path suffixes, first found wins),
# and the factor to seconds. DM stores the dwell in microseconds; Velox and TIA in seconds.
_META_KEYS: dict[str, dict[str, tuple[tuple[str, ...], float]]] = {
    "dm": {"dwell_time_s": (("DigiScan.Sample Time",), 1e-6),
           "frame_time_s": (("Acquisition.Parameters.High Level.Exposure (s)",), 1.0),
           "detector": (("Temp-Tags.Detector", "DigiScan.Signal Name", "DataBar.Device Name"), 0)},
    "velox": {"dwell_time_s": (("Scan.DwellTime",), 1.0),
              "frame_time_s": (("Scan.FrameTime",), 1.0),
              "acquisition_time": (("AcquisitionStartDatetime.DateTime",), 0),
              "detector": (("BinaryResult.Detector",), 0)},
    "tia": {"dwell_time_s": (("AcquireInfo.DwellTimePath", "Dwell time_s"), 1.0),
            "frame_time_s": (("AcquireInfo.FrameTime",), 1.0),
            "acquisition_time": (("ser_header_parameters.Time",), 0),
            "detector": (("ExperimentalDescription.Detector", "DetectorName", "Detector"), 0)},
}


def _time_meta(fmt: str, md: dict, om: dict) -> dict[str, Any]:
    """dwell_time_s, frame_time_s, acquisition_time (ISO 8601) and detector, where the file has
    them (``_META_KEYS``)."""
    if fmt == "hspy":  # HyperSpy keeps the original file's tree: try each microscope's keys
        for origin in ("dm", "velox", "tia"):
            found = _time_meta(origin, md, om)
            if set(found) - {"acquisition_time"}:
                return found
    out: dict[str, Any] = {}
    for name, (keys, to_s) in _META_KEYS.get(fmt, {}).items():
        value = _find(om, *keys)
        if name == "detector":
            converted: Any = str(value) if value is not None else None
        elif name == "acquisition_time":
            converted = _iso_from_epoch(value)  # Velox and TIA store Unix seconds
        else:
            f = _float(value)
            converted = f * to_s if f else None
        if converted:
            out[name] = converted
    if fmt == "dm":
        date, time = _find(om, "DataBar.Acquisition Date"), _find(om, "DataBar.Acquisition Time")
        if date and time:
            out["acquisition_time"] = _parse_dm_time(str(date), str(time))
    general = md.get("General", {}) if isinstance(md, dict) else {}
    if "acquisition_time" not in out and general.get("date"):
        out["acquisition_time"] = f"{general['date']}T{general.get('time', '00:00:00')}"
    return out


def _parse_dm_time(date: str, time: str) -> str:
    for fmt in ("%d-%b-%y %I:%M:%S %p", "%m/%d/%Y %I:%M:%S %p", "%d.%m.%Y %H:%M:%S",
                "%m/%d/%y %I:%M:%S %p", "%Y-%m-%d %H:%M:%S"):
        try:
            return _dt.datetime.strptime(f"{date} {time}", fmt).isoformat()
        except ValueError:
            continue
    return f"{date} {time}"


# -- rosettasciio formats (DM3/DM4, EMD, SER) -----------------------------------------------------

_RSCIIO = {
    ".dm3": ("digitalmicrograph", "dm", "Gatan DigitalMicrograph"),
    ".dm4": ("digitalmicrograph", "dm", "Gatan DigitalMicrograph"),
    ".emd": ("emd", "velox", "EMD"),
    ".ser": ("tia", "tia", "FEI/TIA SER"),
    ".hspy": ("hspy", "hspy", "HyperSpy HDF5"),
}


def _rsciio_suffix(path: Path) -> str:
    """The ``_RSCIIO`` key of ``path``: its suffix, except HyperSpy's files saved as ``.hdf5``
    (older HyperSpy versions), which are read as ``.hspy``."""
    suffix = path.suffix.lower()
    return ".hspy" if suffix in (".h5", ".hdf5") else suffix


def _rsciio_signals(path: Path) -> tuple[list[dict], str, str]:
    module, fmt, what = _RSCIIO[_rsciio_suffix(path)]
    reader = _import(path, f"rsciio.{module}", what).file_reader
    try:
        signals = reader(str(path), lazy=True)
    except ImageFileError:
        raise
    except Exception as exc:  # the readers raise many types on truncated or foreign files
        raise ImageFileError(f"{path}: not a readable {what} file ({_first_line(exc)})") from None
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
    if fmt == "tia":
        om = {**om, **_emi_metadata(path)}
    title = (md.get("General", {}) or {}).get("title") or ""
    if fmt == "velox" and "Core" not in om and "Detectors" not in om:
        fmt = "emd"  # Berkeley EMD (no Velox metadata tree)
    meta: dict[str, Any] = {"format": fmt, "reader": f"rosettasciio.{_RSCIIO[_rsciio_suffix(path)][0]}",
                            "source_file": str(path), "signal_index": index}
    try:
        meta.update(_time_meta(fmt, md, om))
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
    emd = _import(path, "ncempy.io.emd", "Berkeley EMD")
    try:
        f = emd.fileEMD(str(path), readonly=True)
    except Exception as exc:
        raise ImageFileError(f"{path}: not a readable Berkeley EMD file ({_first_line(exc)})") \
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
        raise ImageFileError(f"{path}: not a readable Berkeley EMD file ({_first_line(exc)})") \
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
                             f"({_first_line(exc)})") from None
    return RawImage(array, path, axes, pixel_size, meta)


def open_rsciio(path: Path) -> FrameStack:
    if path.suffix.lower() == ".emd" and not _is_velox(path):
        return _open_berkeley(path)
    data, axes, pixel_size, meta = _rsciio_image(path)
    return FrameStack(path, data, axes, pixel_size, meta)


# -- MRC -----------------------------------------------------------------------------------------


def _mrc_meta(path: Path, mrc: Any) -> tuple[PixelSize | None, dict[str, Any]]:
    vs = mrc.voxel_size
    pixel_size = canonical_pixel_size(float(vs.y), float(vs.x), "A")
    meta: dict[str, Any] = {"format": "mrc", "reader": "mrcfile", "source_file": str(path),
                            "signal": ""}
    label_count = int(mrc.header.nlabl)
    labels = [bytes(lb).decode("ascii", "replace").strip() for lb in mrc.header.label[:label_count]]
    if labels:
        meta["labels"] = labels
    return pixel_size, meta


def _mrc_axes(path: Path, shape: tuple[int, ...]) -> str:
    if len(shape) == 2:
        return "YX"
    if len(shape) == 3:
        return "NYX"
    raise ImageFileError(f"{path}: {len(shape)}-D MRC data; expected an image or a stack")


def read_mrc(path: Path, max_pixels: int) -> RawImage:
    mrcfile = _import(path, "mrcfile", "MRC")
    try:
        with mrcfile.mmap(path, mode="r", permissive=False) as mrc:
            shape = tuple(int(s) for s in mrc.data.shape)
            axes = _mrc_axes(path, shape)
            check_declared_size(path, shape, max_pixels)
            pixel_size, meta = _mrc_meta(path, mrc)
            data = np.array(mrc.data)
    except ImageFileError:
        raise
    except Exception as exc:
        raise ImageFileError(f"{path}: not a readable MRC file ({_first_line(exc)})") from None
    return RawImage(data, path, axes, pixel_size, meta)


def open_mrc(path: Path) -> FrameStack:
    mrcfile = _import(path, "mrcfile", "MRC")
    try:
        mrc = mrcfile.mmap(path, mode="r", permissive=False)
    except Exception as exc:
        raise ImageFileError(f"{path}: not a readable MRC file ({_first_line(exc)})") from None
    shape = tuple(int(s) for s in mrc.data.shape)
    axes = _mrc_axes(path, shape)
    pixel_size, meta = _mrc_meta(path, mrc)
    return FrameStack(path, mrc.data, axes, pixel_size, meta, close=mrc.close)


# -- HDF5 ----------------------------------------------------------------------------------------


def split_dataset(path: Path) -> tuple[Path, str | None]:
    """``file.h5#/group/data`` -> (``file.h5``, ``/group/data``); no ``#`` -> (path, None)."""
    text = str(path)
    if "#" not in text:
        return path, None
    file_part, dataset = text.split("#", 1)
    return Path(file_part), dataset or None


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


def _h5_open(path: Path) -> tuple[Any, Any, str]:
    h5py = _import(path, "h5py", "HDF5")
    file_path, dataset = split_dataset(path)
    try:
        h5 = h5py.File(file_path, "r")
    except Exception as exc:
        raise ImageFileError(f"{file_path}: not a readable HDF5 file ({_first_line(exc)})") from None
    try:
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


def _is_hyperspy_hdf5(path: Path) -> bool:
    """A whole ``.h5``/``.hdf5`` file (no ``#dataset``) that HyperSpy wrote: read it with its axes
    and metadata through rosettasciio, not as a bare dataset without a pixel size."""
    file_path, dataset = split_dataset(path)
    if dataset is not None:
        return False
    try:
        import h5py

        with h5py.File(file_path, "r") as h5:
            return str(h5.attrs.get("file_format", "")) == "HyperSpy"
    except Exception:  # unreadable: the HDF5 reader says why, in one line
        return False


def read_hdf5(path: Path, max_pixels: int) -> RawImage:
    if _is_hyperspy_hdf5(path):
        return read_rsciio(path, max_pixels)
    h5, ds, dataset = _h5_open(path)
    file_path, _ = split_dataset(path)
    try:
        check_declared_size(path, tuple(ds.shape), max_pixels)
        try:
            data = ds[()]
        except Exception as exc:
            raise ImageFileError(f"{path}: pixel data unreadable, the file may be truncated "
                                 f"({_first_line(exc)})") from None
        return RawImage(data, path, "YX" if ds.ndim == 2 else "NYX", _h5_pixel_size(ds),
                        _h5_meta(file_path, ds, dataset))
    finally:
        h5.close()


def open_hdf5(path: Path) -> FrameStack:
    if _is_hyperspy_hdf5(path):
        return open_rsciio(path)
    h5, ds, dataset = _h5_open(path)
    file_path, _ = split_dataset(path)
    return FrameStack(path, ds, "YX" if ds.ndim == 2 else "NYX", _h5_pixel_size(ds),
                      _h5_meta(file_path, ds, dataset), close=h5.close)


READERS: dict[tuple[str, ...], tuple[Callable[[Path, int], RawImage], Callable[[Path], FrameStack]]]
READERS = {
    (".dm3", ".dm4", ".emd", ".ser", ".hspy"): (read_rsciio, open_rsciio),
    (".mrc", ".mrcs"): (read_mrc, open_mrc),
    (".h5", ".hdf5"): (read_hdf5, open_hdf5),
}

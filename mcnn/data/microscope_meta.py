"""Times, detector names and how the image was acquired (a scanned probe or a camera) from a
microscope file's original metadata tree (Gatan DM, Velox, TIA, and HyperSpy files that kept one of
those trees): where each vendor keeps them, in seconds and ISO 8601.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from typing import Any

import numpy as np


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


def acquisition(fmt: str, om: dict) -> str | None:
    """``"scan"`` (a scanned probe: STEM, SEM) or ``"camera"`` (a TEM camera), where the file says
    so outright; None where it does not. Velox names the type of the detector that made the image;
    DM tags a scanned image with its DigiScan settings and records the illumination mode; TIA
    records the microscope's mode ("STEM nP SA Zoom Image", "TEM uP SA Zoom Image")."""
    if fmt == "velox":
        found = _find(om, "BinaryResult.DetectorIndex")
        index = str(found) if isinstance(found, (int, np.integer)) else _text(found)
        kind = _find(om, f"Detectors.Detector-{index}.DetectorType") if index else None
        return {"scanningdetector": "scan", "imagingdetector": "camera"}.get(_text(kind).lower())
    if fmt == "dm":
        if any(".imagetags.digiscan." in f".{key.lower()}." for key, _ in _walk(om)):
            return "scan"
        mode = _text(_find(om, "Microscope Info.Illumination Mode")).upper()
        return {"STEM": "scan", "TEM": "camera"}.get(mode)
    if fmt == "tia":
        words = _text(_find(om, "ExperimentalDescription.Mode")).split()
        return "scan" if "STEM" in words else "camera" if "TEM" in words else None
    return None


def _text(value: Any) -> str:
    """A metadata value that is text, else "" (an array or number says nothing about a mode)."""
    if isinstance(value, bytes):
        return value.decode(errors="replace").strip()
    return value.strip() if isinstance(value, str) else ""


def time_meta(fmt: str, md: dict, om: dict) -> dict[str, Any]:
    """dwell_time_s, frame_time_s, acquisition_time (ISO 8601), detector and acquisition
    (``"scan"`` or ``"camera"``), where the file has them (``_META_KEYS``, :func:`acquisition`)."""
    if fmt == "hspy":  # HyperSpy keeps the original file's tree: try each microscope's keys
        for origin in ("dm", "velox", "tia"):
            found = time_meta(origin, md, om)
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
    try:
        how = acquisition(fmt, om)
    except Exception:  # an odd tree must not cost the times and detector found above
        how = None
    if how is not None:
        out["acquisition"] = how
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

"""Pixel size from a TIFF's metadata, by the conventions microscopes and imaging programs write.

Most explicit first:

1. **OME-XML** (``PhysicalSizeX``/``Y`` with their units; micrometres when no unit is given).
2. **ImageJ** (resolution tags in pixels per ``unit`` of its description: ``nm``, ``micron``...).
3. **FEI / Thermo Fisher** (the SFEG or HELIOS tag: ``[Scan] PixelWidth`` in metres), as SEM, FIB
   and (S)TEM software of that maker writes.
4. **Zeiss SEM** (the CZ_SEM tag's ``Image Pixel Size`` with its unit).
5. Resolution tags in **centimetres**.

Resolution tags in **inches** are a display density (72, 96 or 300 dpi is what Pillow, Photoshop
and most "export as TIFF" write), not a size at the specimen: a 72-dpi figure is not a 353 um
pixel, so they give no pixel size (the dpi is kept in the image's ``meta``). Sizes come back in
micrometres, except picometres, which are kept as ``pm`` (STEM pixel sizes stay readable, as
our ImageJ outputs write them); unknown units are kept as written.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from mcnn.data.units import nm_per

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TiffPixelSize:
    """(y, x) of one pixel in ``unit`` (``um`` for lengths, except ``pm``, which stays ``pm``
    as our ImageJ outputs write it; any other unit as written) and the convention read."""

    y: float
    x: float
    unit: str
    source: str  # "ome", "imagej", "fei", "zeiss_sem", "resolution_cm"


def _in_um(y: float, x: float, unit: str, source: str) -> TiffPixelSize | None:
    if not (y > 0 and x > 0):
        return None
    nm = nm_per(unit)
    if nm is None or unit.strip().lower() == "pm":
        return TiffPixelSize(y, x, unit.strip(), source)
    return TiffPixelSize(y * nm * 1e-3, x * nm * 1e-3, "um", source)


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _from_ome(tif: Any) -> TiffPixelSize | None:
    text = tif.ome_metadata
    if not text:
        return None
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        log.debug("OME-XML not parsed (%s)", exc)
        return None
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] != "Pixels":
            continue
        x = _float(el.get("PhysicalSizeX"))
        y = _float(el.get("PhysicalSizeY")) or x
        if x is None or y is None:
            return None
        return _in_um(y, x, el.get("PhysicalSizeXUnit") or "µm", "ome")
    return None


def _from_resolution(tif: Any) -> tuple[TiffPixelSize | None, float | None]:
    """(ImageJ or centimetre resolution, or None; the dpi when the tags are in inches)."""
    tags = tif.pages[0].tags
    xres, yres = tags.get("XResolution"), tags.get("YResolution")
    if xres is None or yres is None:
        return None, None
    (xn, xd), (yn, yd) = xres.value, yres.value
    if not (xn and yn and xd and yd):
        return None, None
    px_x, px_y = xd / xn, yd / yn  # resolution is pixels per unit
    res_unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2
    imagej_unit = str((tif.imagej_metadata or {}).get("unit", "")).strip()
    if imagej_unit and imagej_unit.lower() not in ("pixel", "pixels", "inch"):
        return _in_um(px_y, px_x, imagej_unit, "imagej"), None
    if res_unit == 3:
        return _in_um(px_y, px_x, "cm", "resolution_cm"), None
    if res_unit == 2:
        return None, xn / xd
    return None, None


def _from_fei(tif: Any) -> TiffPixelSize | None:
    md = tif.fei_metadata or {}
    for section in ("Scan", "EScan", "Image"):
        values = md.get(section) or {}
        x = _float(values.get("PixelWidth"))
        y = _float(values.get("PixelHeight")) or x
        if x and y:
            return _in_um(y, x, "m", "fei")
    return None


def _from_zeiss(tif: Any) -> TiffPixelSize | None:
    md = tif.sem_metadata or {}
    for key in ("ap_image_pixel_size", "ap_pixel_size"):
        entry = md.get(key)
        if isinstance(entry, tuple) and len(entry) >= 3:
            size = _float(entry[1])
            if size:
                return _in_um(size, size, str(entry[2]), "zeiss_sem")
    return None


def tiff_pixel_size(tif: Any) -> tuple[TiffPixelSize | None, dict[str, Any]]:
    """The pixel size an open ``tifffile.TiffFile`` records (None: none that is physical) and
    what to add to the image's ``meta`` (``pixel_size_from``, or ``tiff_dpi`` for a display
    density that was not taken as a size)."""
    resolution, dpi = _from_resolution(tif)
    imagej = resolution if resolution is not None and resolution.source == "imagej" else None
    # Most explicit first; ``or`` stops parsing at the first convention that gives a size.
    found = _from_ome(tif) or imagej or _from_fei(tif) or _from_zeiss(tif) or resolution
    if found is not None:
        return found, {"pixel_size_from": found.source}
    return None, ({"tiff_dpi": round(dpi, 3)} if dpi else {})

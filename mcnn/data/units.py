"""Lengths: the one unit table that the readers, the TIFF metadata and ``PixelSize`` convert with,
a pixel size with its unit, and lengths typed on a command line (``10pm``).

Keys are lower-case spellings found in microscope files and on command lines (``"A"`` and ``"Å"``
are ångström; ImageJ writes ``micron`` and sometimes an escaped ``\\u00b5m``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

LENGTH_NM: dict[str, float] = {
    "pm": 1e-3, "nm": 1.0, "a": 0.1, "å": 0.1, "angstrom": 0.1, "ang": 0.1,
    "um": 1e3, "µm": 1e3, "μm": 1e3, "\\u00b5m": 1e3, "micron": 1e3, "microns": 1e3,
    "mm": 1e6, "cm": 1e7, "m": 1e9, "inch": 2.54e7, "in": 2.54e7,
}


def nm_per(unit: str) -> float | None:
    """Nanometres in one ``unit``; None when ``unit`` is not a length (``"1/nm"``, ``"px"``)."""
    return LENGTH_NM.get(unit.strip().lower())


@dataclass(frozen=True)
class PixelSize:
    """Physical size of one pixel along y (rows) and x (columns), in ``unit`` ("um" when known)."""

    y: float
    x: float
    unit: str = "um"

    def scaled(self, factor: float) -> PixelSize:
        """The pixel size after resampling by ``factor`` (2: twice as many pixels, half as big)."""
        return PixelSize(self.y / factor, self.x / factor, self.unit)

    def to(self, unit: str) -> PixelSize:
        """The same size in another length unit ("pm", "nm", "um", "mm", "m", "A")."""
        return PixelSize(length_in(self.y, self.unit, unit), length_in(self.x, self.unit, unit), unit)

    def __str__(self) -> str:
        if math.isclose(self.y, self.x, rel_tol=1e-6):
            return f"{self.x:.4g} {self.unit}"
        return f"{self.y:.4g} x {self.x:.4g} {self.unit} (y x)"


def length_in(value: float, unit: str, to: str) -> float:
    """``value`` in length ``unit`` expressed in ``to``; a non-length unit is a ValueError."""
    a, b = nm_per(unit), nm_per(to)
    if a is None or b is None:
        shown = ", ".join(sorted(k for k in LENGTH_NM if not k.startswith("\\")))
        raise ValueError(f"cannot convert {unit!r} to {to!r}: expected lengths in {shown}")
    return value * a / b


def parse_length(text: str, default_unit: str = "nm") -> tuple[float, str]:
    """``"10pm"``, ``"0.5 nm"``, ``"12"`` -> (value, unit); the unit must be a length."""
    m = re.fullmatch(r"\s*([0-9.eE+-]+)\s*([A-Za-zµμÅå]*)\s*", text)
    if not m:
        raise ValueError(f"{text!r}: expected a length such as 10pm or 0.2nm")
    value, unit = float(m.group(1)), (m.group(2) or default_unit)
    length_in(1.0, unit, "nm")  # validates the unit
    if not value > 0:
        raise ValueError(f"{text!r}: a length must be > 0")
    return value, unit


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

"""Length units: the one table that the readers, the TIFF metadata and ``PixelSize`` convert with.

Keys are lower-case spellings found in microscope files and on command lines (``"A"`` and ``"Å"``
are ångström; ImageJ writes ``micron`` and sometimes an escaped ``\\u00b5m``).
"""

from __future__ import annotations

LENGTH_NM: dict[str, float] = {
    "pm": 1e-3, "nm": 1.0, "a": 0.1, "å": 0.1, "angstrom": 0.1, "ang": 0.1,
    "um": 1e3, "µm": 1e3, "μm": 1e3, "\\u00b5m": 1e3, "micron": 1e3, "microns": 1e3,
    "mm": 1e6, "cm": 1e7, "m": 1e9, "inch": 2.54e7, "in": 2.54e7,
}


def nm_per(unit: str) -> float | None:
    """Nanometres in one ``unit``; None when ``unit`` is not a length (``"1/nm"``, ``"px"``)."""
    return LENGTH_NM.get(unit.strip().lower())

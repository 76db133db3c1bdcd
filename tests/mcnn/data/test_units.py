"""One length table: PixelSize conversions, microscope-file scales and TIFF tags agree."""

import pytest

from mcnn.data.tiff_meta import _in_um
from mcnn.data.units import PixelSize, canonical_pixel_size, length_in, nm_per, parse_length


@pytest.mark.parametrize(
    ("spelling", "nm"),
    [("pm", 1e-3), ("Å", 0.1), ("A", 0.1), ("ang", 0.1), ("nm", 1.0), ("µm", 1e3), ("μm", 1e3),
     ("\\u00b5m", 1e3), ("micron", 1e3), ("Microns", 1e3), (" um ", 1e3), ("mm", 1e6),
     ("cm", 1e7), ("inch", 2.54e7)],
)
def test_every_reader_converts_a_spelling_the_same_way(spelling, nm):
    assert nm_per(spelling) == pytest.approx(nm)
    assert length_in(2.0, spelling, "nm") == pytest.approx(2.0 * nm)
    size = canonical_pixel_size(2.0, 2.0, spelling)
    assert size is not None and size.to("nm").x == pytest.approx(2.0 * nm)
    tiff = _in_um(2.0, 2.0, spelling, "test")
    assert tiff is not None
    assert PixelSize(tiff.y, tiff.x, tiff.unit).to("nm").y == pytest.approx(2.0 * nm)


@pytest.mark.parametrize("unit", ["1/nm", "px", "s", ""])
def test_a_unit_that_is_not_a_length_is_not_converted(unit):
    assert nm_per(unit) is None
    with pytest.raises(ValueError, match="expected lengths"):
        length_in(1.0, unit or "?", "nm")


def test_tiff_keeps_pm_and_a_command_line_length_parses():
    assert _in_um(12.5, 12.5, "pm", "imagej").unit == "pm"
    assert parse_length("10pm") == (10.0, "pm")


def test_a_unit_error_lists_the_units_as_a_user_types_them():
    with pytest.raises(ValueError, match="expected lengths in ") as err:
        length_in(1.0, "furlong", "nm")
    assert "\\u00b5" not in str(err.value) and "µm" in str(err.value)

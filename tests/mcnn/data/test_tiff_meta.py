"""TIFF pixel sizes by the conventions microscopes write, in files tifffile writes and reads."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from mcnn.data.image_io import PixelSize, read_raw


def _size_um(path):
    raw = read_raw(path)
    assert raw.pixel_size is not None and raw.pixel_size.unit == "um", raw.pixel_size
    return raw.pixel_size.y, raw.pixel_size.x, raw.meta.get("pixel_size_from")


def test_ome_physical_size_with_its_unit(tmp_path):
    tifffile.imwrite(tmp_path / "ome.ome.tif", np.zeros((2, 16, 16), np.uint16), ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 12.5, "PhysicalSizeXUnit": "pm",
                               "PhysicalSizeY": 15.0, "PhysicalSizeYUnit": "pm"})
    raw = read_raw(tmp_path / "ome.ome.tif")
    assert raw.meta["pixel_size_from"] == "ome"
    assert raw.pixel_size.to("pm") == PixelSize(pytest.approx(15.0), pytest.approx(12.5), "pm")
    tifffile.imwrite(tmp_path / "nm.ome.tif", np.zeros((8, 8), np.uint16), ome=True,
                     metadata={"PhysicalSizeX": 0.02, "PhysicalSizeXUnit": "nm",
                               "PhysicalSizeY": 0.02, "PhysicalSizeYUnit": "nm"})
    assert _size_um(tmp_path / "nm.ome.tif") == (pytest.approx(2e-5), pytest.approx(2e-5), "ome")


def test_ome_without_a_unit_is_micrometres(tmp_path):
    tifffile.imwrite(tmp_path / "um.ome.tif", np.zeros((8, 8), np.uint8), ome=True,
                     metadata={"PhysicalSizeX": 0.65, "PhysicalSizeY": 0.65})
    assert _size_um(tmp_path / "um.ome.tif") == (pytest.approx(0.65), pytest.approx(0.65), "ome")


def test_fei_thermo_scan_pixel_width_in_metres(tmp_path):
    header = "[User]\nDate=12/07/2026\n[Scan]\nPixelWidth=2.54e-11\nPixelHeight=2.54e-11\nDwelltime=1e-06\n"
    tifffile.imwrite(tmp_path / "fei.tif", np.zeros((8, 8), np.uint16),
                     resolution=(96, 96), resolutionunit="INCH",  # what such exports carry
                     extratags=[(34682, "s", 0, header, True)])
    with tifffile.TiffFile(tmp_path / "fei.tif") as tif:
        assert tif.is_fei  # tifffile's own parser sees the tag
    assert _size_um(tmp_path / "fei.tif") == (pytest.approx(2.54e-5), pytest.approx(2.54e-5), "fei")


def test_zeiss_sem_image_pixel_size(tmp_path):
    text = "\r\nAP_IMAGE_PIXEL_SIZE\r\nImage Pixel Size = 3.2 nm\r\nAP_WD\r\nWD = 5.0 mm\r\n"
    tifffile.imwrite(tmp_path / "zeiss.tif", np.zeros((8, 8), np.uint8),
                     extratags=[(34118, "s", 0, text, True)])
    assert _size_um(tmp_path / "zeiss.tif") == (pytest.approx(3.2e-3), pytest.approx(3.2e-3),
                                                "zeiss_sem")


@pytest.mark.parametrize("dpi", [72, 96, 300])
def test_inch_resolution_is_a_display_dpi_not_a_pixel_size(tmp_path, dpi):
    tifffile.imwrite(tmp_path / "figure.tif", np.zeros((8, 8), np.uint8),
                     resolution=(dpi, dpi), resolutionunit="INCH")
    raw = read_raw(tmp_path / "figure.tif")
    assert raw.pixel_size is None  # 1/72 inch would be a 353 um "pixel"
    assert raw.meta["tiff_dpi"] == pytest.approx(dpi)


def test_centimetre_tags_are_a_physical_size(tmp_path):
    tifffile.imwrite(tmp_path / "cm.tif", np.zeros((8, 8), np.uint8),
                     resolution=(1e4 / 0.5, 1e4 / 0.5), resolutionunit="CENTIMETER")
    assert _size_um(tmp_path / "cm.tif") == (pytest.approx(0.5), pytest.approx(0.5),
                                             "resolution_cm")

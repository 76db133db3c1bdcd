"""One reader registry and one value policy: exact values per dtype, pixel sizes, size limits,
non-finite pixels and colour/stack layouts."""

import struct
import zlib

import cv2
import numpy as np
import pytest
import tifffile

from mcnn.data import image_io
from mcnn.data.image_io import (
    ImageFileError,
    PixelSize,
    RawImage,
    normalise,
    policy_for,
    read_images,
    read_raw,
    register_reader,
    write_image,
)


@pytest.mark.parametrize(
    ("dtype", "stored", "expected", "rule"),
    [
        (np.uint8, [0, 51, 255], [0.0, 0.2, 1.0], "unit8"),
        (np.uint16, [0, 13107, 65535], [0.0, 0.2, 1.0], "unit16"),
        (np.int16, [-300, 0, 32767], [-300.0, 0.0, 32767.0], "counts"),
        (np.int32, [-5, 7, 2_000_000], [-5.0, 7.0, 2_000_000.0], "counts"),
        (np.uint32, [0, 3, 4_000_000_000], [0.0, 3.0, 4e9], "counts"),
        (np.int8, [-128, 1, 127], [-128.0, 1.0, 127.0], "counts"),
        (np.bool_, [False, True, True], [0.0, 1.0, 1.0], "bool"),
        (np.float64, [-1.5, 0.25, 1e6], [-1.5, 0.25, 1e6], "float"),
    ],
)
def test_each_dtype_follows_the_one_policy_exactly(dtype, stored, expected, rule, tmp_path):
    a = np.array([stored], dtype=dtype)
    assert policy_for(a.dtype) == rule
    out = normalise(a, "x")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([expected], np.float32))
    np.save(tmp_path / "x.npy", a)  # the same values through a file
    np.testing.assert_array_equal(read_images(tmp_path / "x.npy")[0, 0], out)


def test_uint16_and_uint32_tiffs_through_the_reader(tmp_path):
    tifffile.imwrite(tmp_path / "u16.tif", np.full((4, 5), 65535, np.uint16))
    tifffile.imwrite(tmp_path / "u32.tif", np.full((4, 5), 70000, np.uint32))
    assert read_raw(tmp_path / "u32.tif").data.dtype == np.uint32  # stored dtype kept
    assert read_images(tmp_path / "u16.tif").max() == 1.0
    assert read_images(tmp_path / "u32.tif").max() == 70000.0  # counts, not /4294967295


def test_nan_pixels_are_refused_with_their_count_or_zeroed(tmp_path):
    a = np.ones((4, 4), np.float32)
    a[1, 2], a[3, 3] = np.nan, np.inf
    tifffile.imwrite(tmp_path / "nan.tif", a)
    with pytest.raises(ImageFileError, match=r"nan\.tif: 2 of 16 pixels are NaN or infinite"):
        read_images(tmp_path / "nan.tif")
    zeroed = read_images(tmp_path / "nan.tif", nonfinite="zero")
    assert zeroed[0, 0, 1, 2] == 0 and zeroed[0, 0, 3, 3] == 0 and zeroed.sum() == 14


def test_tiff_pixel_size_round_trips_and_is_read_from_imagej_and_cm_tags(tmp_path):
    px = PixelSize(y=0.5, x=0.65)
    write_image(tmp_path / "grey.tif", np.zeros((1, 8, 9), np.float32), px)
    write_image(tmp_path / "stack.tif", np.zeros((3, 1, 8, 9), np.float32), px)
    write_image(tmp_path / "rgb.tif", np.zeros((3, 8, 9), np.float32), px)
    for name in ("grey.tif", "stack.tif", "rgb.tif"):
        raw = read_raw(tmp_path / name)
        assert raw.pixel_size.unit == "um", name
        assert raw.pixel_size.y == pytest.approx(0.5, rel=1e-6)
        assert raw.pixel_size.x == pytest.approx(0.65, rel=1e-6)
    assert read_images(tmp_path / "stack.tif").shape == (3, 1, 8, 9)
    assert read_images(tmp_path / "rgb.tif").shape == (1, 3, 8, 9)
    with tifffile.TiffFile(tmp_path / "grey.tif") as tif:
        assert tif.imagej_metadata["unit"] == "micron"  # Fiji shows the scale
    tifffile.imwrite(tmp_path / "nm.tif", np.zeros((4, 4), np.uint8), imagej=True,
                     resolution=(1 / 20, 1 / 20), metadata={"unit": "nm"})
    assert read_raw(tmp_path / "nm.tif").pixel_size == PixelSize(0.02, 0.02, "um")
    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((4, 4), np.uint8))
    assert read_raw(tmp_path / "plain.tif").pixel_size is None


def _png_header(height: int, width: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(
        ">I", zlib.crc32(chunk)
    )


def test_an_oversized_declared_size_is_refused_before_decoding(tmp_path, monkeypatch):
    (tmp_path / "huge.png").write_bytes(_png_header(100_000, 100_000))  # no pixel data at all
    with pytest.raises(ImageFileError, match=r"huge\.png: declares 100000 x 100000 .* limit"):
        read_raw(tmp_path / "huge.png")
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((4, 16, 16), np.uint8), photometric="minisblack")
    np.save(tmp_path / "a.npy", np.zeros((16, 16), np.float32))

    def no_decoding(*args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(tifffile.TiffPageSeries, "asarray", no_decoding)
    with pytest.raises(ImageFileError, match=r"stack\.tif: declares 4 x 16 x 16 = 1024 pixels"):
        read_raw(tmp_path / "stack.tif", max_pixels=1000)
    with pytest.raises(ImageFileError, match=r"a\.npy: declares 16 x 16"):
        read_raw(tmp_path / "a.npy", max_pixels=255)
    cv2.imwrite(str(tmp_path / "ok.png"), np.zeros((16, 16), np.uint8))
    monkeypatch.setattr(cv2, "imread", no_decoding)
    with pytest.raises(ImageFileError, match="16 x 16"):
        read_raw(tmp_path / "ok.png", max_pixels=255)


def test_colour_is_rgb_alpha_is_dropped_and_tiff_axes_decide_colour_vs_stack(tmp_path):
    bgra = np.zeros((6, 7, 4), np.uint8)
    bgra[..., 2], bgra[..., 3] = 255, 128  # red, half transparent
    cv2.imwrite(str(tmp_path / "red.png"), bgra)
    raw = read_raw(tmp_path / "red.png")
    assert raw.axes == "YXC" and raw.data.shape == (6, 7, 4) and raw.data[0, 0, 0] == 255
    x = read_images(tmp_path / "red.png")
    assert x.shape == (1, 3, 6, 7) and x[0, 0].min() == 1 and x[0, 1:].max() == 0
    tifffile.imwrite(tmp_path / "thin.tif", np.zeros((5, 8, 3), np.uint8), photometric="minisblack")
    assert read_images(tmp_path / "thin.tif").shape == (5, 1, 8, 3)  # 5 frames 3 px wide
    np.save(tmp_path / "hwc.npy", np.zeros((8, 7, 3), np.float32))
    assert read_images(tmp_path / "hwc.npy").shape == (1, 3, 8, 7)  # NPY: guessed colour
    assert read_images(tmp_path / "hwc.npy", channels_last=False).shape == (8, 1, 7, 3)
    np.save(tmp_path / "stack.npy", np.zeros((5, 8, 7), np.float32))
    with pytest.raises(ImageFileError, match=r"stack\.npy: shape \(5, 8, 7\) .* last axis of 1, 3"):
        read_images(tmp_path / "stack.npy", channels_last=True)


def test_unknown_suffix_and_broken_files_name_the_file(tmp_path):
    (tmp_path / "a.xyz").write_bytes(b"?")
    with pytest.raises(ImageFileError, match=r"a\.xyz: unsupported file type; expected one of"):
        read_raw(tmp_path / "a.xyz")
    (tmp_path / "b.png").write_bytes(b"not a png")
    with pytest.raises(ImageFileError, match=r"b\.png: not a readable PNG image"):
        read_raw(tmp_path / "b.png")
    with pytest.raises(ImageFileError, match=r"c\.tif: no such file"):
        read_raw(tmp_path / "c.tif")


def test_a_new_format_is_one_registry_entry(tmp_path, monkeypatch):
    monkeypatch.setattr(image_io, "_READERS", dict(image_io._READERS))

    def read_counts(path, max_pixels):  # e.g. a detector format storing uint32 counts
        image_io.check_declared_size(path, (3, 4), max_pixels)
        return RawImage(np.full((3, 4), 9, np.uint32), path, "YX", PixelSize(0.1, 0.1), {})

    register_reader([".CNT"], read_counts)
    (tmp_path / "frame.cnt").write_bytes(b"")
    assert ".cnt" in image_io.image_suffixes()
    x = read_images(tmp_path / "frame.cnt")
    assert x.shape == (1, 1, 3, 4) and x.max() == 9.0
    assert [p.name for p in image_io.list_images(tmp_path)] == ["frame.cnt"]

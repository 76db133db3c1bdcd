"""Microscope readers: every shared real file, cross-checked against rosettasciio/ncempy directly,
and files the tests write themselves (MRC, HDF5, Berkeley EMD, TIFF stacks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcnn.data.image_io import (
    ImageFileError,
    PixelSize,
    open_frames,
    read_images,
    read_raw,
    write_image,
)

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "microscopy"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared test data absent")

# (file, library reader used as the reference)
REAL_IMAGES = ["MoS2_Se_implanted_ADF.dm3", "16_STOimage_1.ser", "Camera_Ceta_Imaging_Micro.emd"]


def _ncempy_reference(path: Path) -> tuple[np.ndarray, float, str]:
    import ncempy.io as nio

    d = nio.read(str(path))
    return np.asarray(d["data"]), float(d["pixelSize"][-1]), str(d["pixelUnit"][-1])


@needs_shared
@pytest.mark.parametrize("name", REAL_IMAGES)
def test_real_file_matches_ncempy_pixels_and_pixel_size(name):
    raw = read_raw(SHARED / name)
    ref, ref_px, ref_unit = _ncempy_reference(SHARED / name)
    assert raw.axes == "YX"
    assert raw.data.shape == ref.shape and raw.data.dtype == ref.dtype
    np.testing.assert_array_equal(raw.data, ref)
    ref_ps = PixelSize(ref_px, ref_px, ref_unit).to("nm")
    assert raw.pixel_size is not None
    got = raw.pixel_size.to("nm")
    assert got.x == pytest.approx(ref_ps.x, rel=1e-5) and got.y == pytest.approx(ref_ps.y, rel=1e-5)
    assert raw.meta["source_file"] == str(SHARED / name)
    assert "acquisition_time" in raw.meta


@needs_shared
def test_real_files_carry_units_times_and_detector():
    dm = read_raw(SHARED / "MoS2_Se_implanted_ADF.dm3")
    assert dm.pixel_size == PixelSize(pytest.approx(12.6953125), pytest.approx(12.6953125), "pm")
    assert dm.meta["detector"] == "HAADF"
    assert dm.meta["dwell_time_s"] == pytest.approx(32.4e-6, rel=1e-6)
    ser = read_raw(SHARED / "16_STOimage_1.ser")
    assert ser.pixel_size.unit == "pm" and ser.pixel_size.x == pytest.approx(10.0127, rel=1e-4)
    assert ser.meta["dwell_time_s"] == pytest.approx(29e-6)  # from the .emi beside it
    emd = read_raw(SHARED / "Camera_Ceta_Imaging_Micro.emd")
    assert emd.meta["format"] == "velox" and emd.meta["detector"] == "BM-Ceta"
    assert emd.meta["frame_time_s"] == pytest.approx(0.6615155)
    assert emd.pixel_size.unit == "nm" and emd.pixel_size.x == pytest.approx(3.1388, rel=1e-4)
    # how each was acquired, as its vendor's metadata says: DigiScan, TIA's "STEM" mode, Velox's
    # ImagingDetector
    assert [f.meta["acquisition"] for f in (dm, ser, emd)] == ["scan", "scan", "camera"]


def test_acquisition_is_taken_only_where_the_metadata_says_it():
    from mcnn.data.microscope_meta import acquisition

    velox = {"BinaryResult": {"DetectorIndex": "2"},
             "Detectors": {"Detector-1": {"DetectorType": "ImagingDetector"},
                           "Detector-2": {"DetectorType": "ScanningDetector"}}}
    assert acquisition("velox", velox) == "scan"  # the detector that made the image, not another
    velox["BinaryResult"]["DetectorIndex"] = "1"
    assert acquisition("velox", velox) == "camera"
    assert acquisition("velox", {"BinaryResult": {}}) is None
    tags = {"ImageList": {"TagGroup0": {"ImageTags": {"Microscope Info": {
        "Illumination Mode": "TEM"}}}}}
    assert acquisition("dm", tags) == "camera"
    tags["ImageList"]["TagGroup0"]["ImageTags"]["DigiScan"] = {"Sample Time": 16.0}
    assert acquisition("dm", tags) == "scan"
    assert acquisition("dm", {"ImageList": {}}) is None
    for mode, expected in ((" STEM nP SA Zoom Image", "scan"), ("TEM uP SA Zoom Image", "camera"),
                           ("LM Image", None)):
        assert acquisition("tia", {"ObjectInfo": {"ExperimentalDescription": {"Mode": mode}}}) \
            == expected
    assert acquisition("mrc", {}) is None
    # odd trees say nothing rather than raise (an array where text was expected, a number index)
    assert acquisition("tia", {"ExperimentalDescription": {"Mode": np.array([1, 2])}}) is None
    assert acquisition("dm", {"Microscope Info": {"Illumination Mode": np.array([1, 2])}}) is None
    velox = {"BinaryResult": {"DetectorIndex": 1},
             "Detectors": {"Detector-1": {"DetectorType": "ImagingDetector"}}}
    assert acquisition("velox", velox) == "camera"


@needs_shared
def test_a_tia_emi_reads_its_series_and_a_folder_reads_each_series_once(tmp_path):
    """TIA users open the .emi: it gives the pixels, pixel size and dwell time of its _1.ser; a
    folder holding both lists the .ser only (one output per series), an .emi alone is listed."""
    from mcnn.data.image_io import list_images

    emi, ser = read_raw(SHARED / "16_STOimage.emi"), read_raw(SHARED / "16_STOimage_1.ser")
    np.testing.assert_array_equal(emi.data, ser.data)
    assert emi.pixel_size == ser.pixel_size and emi.meta["format"] == "tia"
    assert emi.meta["dwell_time_s"] == pytest.approx(29e-6)
    listed = [p.name for p in list_images(SHARED)]
    assert "16_STOimage_1.ser" in listed and "16_STOimage.emi" not in listed
    (tmp_path / "16_STOimage.emi").symlink_to((SHARED / "16_STOimage.emi").resolve())
    assert [p.name for p in list_images(tmp_path)] == ["16_STOimage.emi"]


@needs_shared
@pytest.mark.parametrize("name", REAL_IMAGES)
def test_real_file_cross_checked_with_rosettasciio(name):
    import rsciio.digitalmicrograph
    import rsciio.emd
    import rsciio.tia

    mod = {".dm3": rsciio.digitalmicrograph, ".ser": rsciio.tia, ".emd": rsciio.emd}[
        Path(name).suffix]
    sig = mod.file_reader(str(SHARED / name))[0]
    raw = read_raw(SHARED / name)
    np.testing.assert_array_equal(raw.data, sig["data"])
    ax = sig["axes"][-1]
    assert raw.pixel_size.to("nm").x == pytest.approx(
        PixelSize(1, float(ax["scale"]), ax["units"]).to("nm").x, rel=1e-6)


@needs_shared
def test_eels_spectrum_is_refused_as_not_an_image():
    with pytest.raises(ImageFileError) as err:
        read_raw(SHARED / "08_carbon.dm3")
    msg = str(err.value)
    assert "08_carbon.dm3" in msg and "not an image" in msg and "\n" not in msg


@needs_shared
def test_truncated_real_file_is_one_line(tmp_path):
    for name in ("MoS2_Se_implanted_ADF.dm3", "Camera_Ceta_Imaging_Micro.emd"):
        src = (SHARED / name).read_bytes()
        bad = tmp_path / name
        bad.write_bytes(src[: len(src) // 2])
        with pytest.raises(ImageFileError) as err:
            read_raw(bad)
        assert str(bad) in str(err.value) and "\n" not in str(err.value)


@needs_shared
def test_real_file_opens_lazily_one_frame(tmp_path):
    with open_frames(SHARED / "MoS2_Se_implanted_ADF.dm3") as stack:
        assert len(stack) == 1 and stack.frame(0).shape == (1024, 1024)
        assert stack.pixel_size.unit == "pm"


def test_unknown_format_and_missing_file_are_one_line(tmp_path):
    (tmp_path / "x.xyz").write_bytes(b"abc")
    with pytest.raises(ImageFileError, match="x.xyz: unsupported file type"):
        read_raw(tmp_path / "x.xyz")
    with pytest.raises(ImageFileError, match="no such file"):
        read_raw(tmp_path / "gone.dm3")
    (tmp_path / "junk.dm4").write_bytes(b"\x00" * 100)
    with pytest.raises(ImageFileError, match="junk.dm4: not a readable"):
        read_raw(tmp_path / "junk.dm4")


def test_mrc_stack_written_with_mrcfile(tmp_path):
    import mrcfile

    data = np.arange(3 * 20 * 30, dtype=np.float32).reshape(3, 20, 30)
    path = tmp_path / "stack.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = 0.5  # angstrom
    raw = read_raw(path)
    assert raw.axes == "NYX" and raw.data.dtype == np.float32
    np.testing.assert_array_equal(raw.data, data)
    assert raw.pixel_size == PixelSize(pytest.approx(50.0), pytest.approx(50.0), "pm")
    assert read_images(path).shape == (3, 1, 20, 30)
    with open_frames(path) as stack:
        assert len(stack) == 3
        np.testing.assert_array_equal(stack.frame(2), data[2])
    trunc = tmp_path / "trunc.mrc"
    trunc.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ImageFileError, match="trunc.mrc: not a readable MRC"):
        read_raw(trunc)


def test_hdf5_dataset_by_name_with_pixel_size(tmp_path):
    import h5py

    path = tmp_path / "scan.h5"
    frames = np.random.default_rng(0).integers(0, 100, (4, 16, 24)).astype(np.uint32)
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("entry/haadf", data=frames)
        ds.attrs["pixel_size_nm"] = 0.05
        ds.attrs["dwell_time_s"] = 2e-6
        f.create_dataset("entry/other", data=np.zeros((8, 8)))
    with pytest.raises(ImageFileError, match=r"2 image datasets .*name one as scan.h5#"):
        read_raw(path)
    raw = read_raw(f"{path}#/entry/haadf")
    assert raw.axes == "NYX" and raw.data.dtype == np.uint32
    np.testing.assert_array_equal(raw.data, frames)
    assert raw.pixel_size == PixelSize(pytest.approx(50.0), pytest.approx(50.0), "pm")
    assert raw.meta["dwell_time_s"] == 2e-6 and raw.meta["dataset"] == "/entry/haadf"
    with open_frames(f"{path}#/entry/haadf") as stack:
        np.testing.assert_array_equal(stack.frame(3), frames[3])
    with pytest.raises(ImageFileError, match="no dataset"):
        read_raw(f"{path}#/entry/nope")


def test_berkeley_emd_written_with_ncempy(tmp_path):
    import ncempy.io.emd as emd

    path = tmp_path / "berkeley.emd"
    data = np.random.default_rng(1).random((12, 16)).astype(np.float32)
    dims = [(np.arange(12) * 0.02, "y", "nm"), (np.arange(16) * 0.02, "x", "nm")]
    with emd.fileEMD(str(path), readonly=False) as f:
        f.put_emdgroup("img", data, dims)
    raw = read_raw(path)
    np.testing.assert_array_equal(raw.data, data)
    assert raw.meta["format"] == "emd"
    assert raw.pixel_size.to("pm").x == pytest.approx(20.0, rel=1e-5)


def _write_hspy(path: Path, data: np.ndarray, axes: list[dict], title: str = "HAADF",
                original: dict | None = None) -> Path:
    """A HyperSpy HDF5 file written by rosettasciio's own writer (what ``s.save()`` calls)."""
    from rsciio.hspy import file_writer

    file_writer(str(path), {
        "data": data, "axes": axes, "original_metadata": original or {},
        "metadata": {"General": {"title": title, "date": "2026-03-04", "time": "10:11:12"},
                     "Signal": {"signal_type": ""}},
        "attributes": {"_lazy": False}, "tmp_parameters": {}, "learning_results": {},
        "models": {}, "package_info": {"name": "hyperspy", "version": "2.3"}})
    return path


def _axis(name: str, size: int, scale: float, units: str, navigate: bool = False) -> dict:
    return {"name": name, "size": size, "scale": scale, "offset": 0.0, "units": units,
            "navigate": navigate}


def test_hyperspy_file_series_with_units_and_the_original_dm_tree(tmp_path):
    frames = np.random.default_rng(3).poisson(4.0, (3, 20, 28)).astype(np.uint16)
    frames[1] += 7  # frame order must be kept
    dm_tree = {"ImageList": {"TagGroup0": {"ImageTags": {"DigiScan": {
        "Sample Time": 4.0, "Signal Name": "HAADF"}}}}}  # as hs.load of a DM3 keeps it
    path = _write_hspy(tmp_path / "series.hspy", frames,
                       [_axis("time", 3, 0.5, "s", navigate=True), _axis("y", 20, 0.2, "Å"),
                        _axis("x", 28, 0.2, "Å")], original=dm_tree)
    raw = read_raw(path)
    assert raw.axes == "NYX" and raw.data.dtype == np.uint16
    np.testing.assert_array_equal(raw.data, frames)
    assert raw.pixel_size == PixelSize(pytest.approx(20.0), pytest.approx(20.0), "pm")
    assert raw.meta["format"] == "hspy" and raw.meta["signal"] == "HAADF"
    assert raw.meta["dwell_time_s"] == pytest.approx(4e-6)  # DM keeps microseconds
    assert raw.meta["acquisition_time"] == "2026-03-04T10:11:12"
    with open_frames(path) as stack:  # lazily, one frame at a time
        assert len(stack) == 3 and stack.pixel_size.to("pm").x == pytest.approx(20.0)
        np.testing.assert_array_equal(stack.frame(1), frames[1])


def test_an_older_hyperspy_hdf5_is_read_with_its_axes_and_a_named_dataset_stays_bare(tmp_path):
    frame = np.random.default_rng(5).random((24, 32)).astype(np.float32)
    path = _write_hspy(tmp_path / "old.hspy", frame, [_axis("y", 24, 0.015, "nm"),
                                                       _axis("x", 32, 0.015, "nm")])
    old = path.rename(tmp_path / "old.hdf5")  # HyperSpy before 1.0 saved .hdf5
    raw = read_raw(old)
    np.testing.assert_array_equal(raw.data, frame)
    assert raw.meta["format"] == "hspy" and raw.pixel_size.to("pm").x == pytest.approx(15.0)
    with open_frames(old) as stack:
        np.testing.assert_array_equal(stack.frame(0), frame)
    bare = read_raw(f"{old}#/Experiments/HAADF/data")  # a dataset named by the user: as asked
    np.testing.assert_array_equal(bare.data, frame)
    assert bare.meta["dataset"] == "/Experiments/HAADF/data"


def test_hyperspy_spectrum_and_truncated_file_are_one_line(tmp_path):
    spectrum = _write_hspy(tmp_path / "eels.hspy", np.ones(256, np.float32),
                           [_axis("Energy loss", 256, 0.5, "eV")], title="EELS")
    with pytest.raises(ImageFileError, match=r"eels.hspy: not an image \(it holds a 1-D"):
        read_raw(spectrum)
    image = _write_hspy(tmp_path / "image.hspy", np.zeros((64, 64), np.float32),
                        [_axis("y", 64, 1.0, "nm"), _axis("x", 64, 1.0, "nm")])
    trunc = tmp_path / "trunc.hspy"
    trunc.write_bytes(image.read_bytes()[:1500])
    with pytest.raises(ImageFileError, match="trunc.hspy: not a readable HyperSpy HDF5") as info:
        read_raw(trunc)
    assert "\n" not in str(info.value)


def test_tiff_stack_reads_lazily_frame_by_frame(tmp_path):
    frames = np.random.default_rng(2).random((5, 10, 12)).astype(np.float32)
    path = write_image(tmp_path / "stack.tif", frames[:, None], PixelSize(0.02, 0.02, "um"))
    with open_frames(path) as stack:
        assert len(stack) == 5 and stack.pixel_size.to("nm").x == pytest.approx(20.0, rel=1e-4)
        for i in range(5):
            np.testing.assert_array_equal(stack.frame(i), frames[i])


def test_pixel_size_conversion_and_lengths():
    from mcnn.data.units import parse_length

    assert PixelSize(0.5, 0.5, "nm").to("pm").x == pytest.approx(500.0)
    assert parse_length("10pm") == (10.0, "pm") and parse_length("0.2 nm") == (0.2, "nm")
    with pytest.raises(ValueError, match="expected a length"):
        parse_length("ten")
    with pytest.raises(ValueError, match="cannot convert"):
        PixelSize(1, 1, "1/nm").to("nm")


def test_reading_without_extra_is_one_line(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "rsciio.digitalmicrograph", None)  # import -> ImportError
    path = tmp_path / "a.dm3"
    path.write_bytes(b"\x00" * 10)
    with pytest.raises(ImageFileError, match=r'a.dm3: .*pip install "mcnn-imaging\[microscopy\]"'):
        read_raw(path)


@needs_shared
def test_signal_selected_by_name_and_unknown_name_is_one_line():
    raw = read_raw(f"{SHARED / 'Camera_Ceta_Imaging_Micro.emd'}#Ceta")
    assert raw.data.shape == (512, 512)
    with pytest.raises(ImageFileError, match=r"no image signal 'HAADF'; the file has 0:Ceta"):
        read_raw(f"{SHARED / 'Camera_Ceta_Imaging_Micro.emd'}#HAADF")


def test_microscope_suffixes_are_registered():
    from mcnn.data.image_io import image_suffixes

    assert {".dm3", ".dm4", ".emd", ".ser", ".hspy", ".mrc", ".h5", ".hdf5", ".tif",
            ".npy"} <= set(
        image_suffixes())

"""mcnn-predict end to end: files in, files out equal to the Predictor's; one-line user errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from apps import predict
from mcnn.infer import Predictor
from mcnn.models import MCNN, ModelConfig
from mcnn.weights import save_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _checkpoint(tmp_path, **kw):
    torch.manual_seed(0)
    cfg = {"depth": 2, "base_width": 8, "max_width": 16, "branches": 1, **kw}
    folder = tmp_path / "run" / "checkpoints" / "best"
    folder.mkdir(parents=True)
    save_model(MCNN(ModelConfig(**cfg)).eval(), folder / "model.safetensors")
    return tmp_path / "run"


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_folder_of_images_and_stacks_gives_float32_tiffs_equal_to_the_predictor(tmp_path, capsys):
    run = _checkpoint(tmp_path)
    rng = np.random.default_rng(0)
    src = tmp_path / "in"
    src.mkdir()
    single = rng.random((21, 30), dtype=np.float32)
    stack = rng.random((5, 20, 33), dtype=np.float32)
    u16 = (rng.random((16, 16)) * 65535).astype(np.uint16)
    tifffile.imwrite(src / "a.tif", single)
    np.save(src / "b.npy", stack)
    import cv2

    cv2.imwrite(str(src / "c.png"), u16)
    out = tmp_path / "out"
    assert predict.main([str(run), str(src), "-o", str(out), "--batch-size", "3"]) == 0
    report = _last_json(capsys)
    assert report["files"] == 3 and report["frames"] == 7 and len(report["written"]) == 3
    p = Predictor.from_checkpoint(run, device="cpu")
    a, b, c = (tifffile.imread(out / f"{n}.tif") for n in "abc")
    assert a.dtype == b.dtype == c.dtype == np.float32
    assert a.shape == (21, 30) and b.shape == (5, 20, 33) and c.shape == (16, 16)
    assert np.allclose(a, p.predict(single), atol=1e-6)
    assert np.allclose(b, p.predict(stack[:, None])[:, 0], atol=1e-6)
    assert np.allclose(c, p.predict(u16.astype(np.float32) / 65535), atol=1e-6)


def test_tiled_npy_output_with_scale_and_a_stack_read_as_channels(tmp_path, capsys):
    run = _checkpoint(tmp_path, in_channels=2, out_channels=3, output_scale=2)
    x = np.random.default_rng(1).random((2, 45, 70), dtype=np.float32)  # 2 frames = 2 channels
    np.save(tmp_path / "pair.npy", x)
    assert predict.main([str(run), str(tmp_path / "pair.npy"), "-o", str(tmp_path / "o"),
                         "--format", "npy", "--tile", "32", "--overlap", "16"]) == 0
    y = np.load(tmp_path / "o" / "pair.npy")
    assert y.dtype == np.float32 and y.shape == (3, 90, 140)
    p = Predictor.from_checkpoint(run, device="cpu", tile_size=32, overlap=16)
    assert np.array_equal(y, p.predict(x))


def test_png_output_writes_one_file_per_frame_of_a_stack(tmp_path, capsys):
    run = _checkpoint(tmp_path)
    stack = np.full((3, 16, 24), 0.5, np.float32)
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="minisblack")
    assert predict.main([str(run), str(tmp_path / "s.tif"), "-o", str(tmp_path / "o"),
                         "--format", "png"]) == 0
    names = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert names == ["s_0000.png", "s_0001.png", "s_0002.png"]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_user_errors_exit_2_with_one_line_naming_the_file(tmp_path, capsys):
    run = _checkpoint(tmp_path)
    import cv2

    cv2.imwrite(str(tmp_path / "input.png"), np.zeros((8, 8, 3), np.uint8))
    out = str(tmp_path / "o")
    assert predict.main([str(run), str(tmp_path / "input.png"), "-o", out]) == 2
    assert "input.png: 3 channels but the model expects 1" in _one_line_error(capsys)
    assert predict.main([str(tmp_path / "nope"), str(tmp_path / "input.png"), "-o", out]) == 2
    assert "nope: no such checkpoint" in _one_line_error(capsys)
    assert predict.main([str(run), str(tmp_path / "missing.tif"), "-o", out]) == 2
    assert "missing.tif: no such file or folder" in _one_line_error(capsys)
    (tmp_path / "broken.tif").write_bytes(b"not a tiff")
    assert predict.main([str(run), str(tmp_path / "broken.tif"), "-o", out]) == 2
    assert "broken.tif: not a readable TIFF" in _one_line_error(capsys)
    np.save(tmp_path / "input.npy", np.zeros((8, 8), np.float32))
    assert predict.main([str(run), str(tmp_path / "input.png"), str(tmp_path / "input.npy"),
                         "-o", out]) == 2
    assert "both would write" in _one_line_error(capsys)
    assert predict.main([str(run), str(tmp_path / "input.npy"), "-o", str(tmp_path),
                         "--format", "npy"]) == 2
    assert "would overwrite an input" in _one_line_error(capsys)
    assert predict.main([str(run), str(tmp_path / "input.npy"), "-o", out, "--tile", "30"]) == 2
    assert "tile_size=30 must be a positive multiple of 4" in _one_line_error(capsys)
    assert predict.main([str(run), str(tmp_path / "input.npy"), "-o", out, "--device", "gpu"]) == 2
    assert "device='gpu': not a device name" in _one_line_error(capsys)


def test_output_tiff_carries_the_input_pixel_size_on_its_own_grid(tmp_path, capsys):
    from mcnn.data.image_io import PixelSize, read_raw, write_image

    run = _checkpoint(tmp_path, output_scale=2)
    write_image(tmp_path / "x.tif", np.zeros((1, 16, 20), np.float32), PixelSize(0.4, 0.5))
    assert predict.main([str(run), str(tmp_path / "x.tif"), "-o", str(tmp_path / "o")]) == 0
    raw = read_raw(tmp_path / "o" / "x.tif")
    assert raw.data.shape == (32, 40)
    assert raw.pixel_size.unit == "um"
    assert (raw.pixel_size.y, raw.pixel_size.x) == pytest.approx((0.2, 0.25), rel=1e-6)


def test_a_nan_input_is_a_one_line_user_error(tmp_path, capsys):
    run = _checkpoint(tmp_path)
    x = np.zeros((8, 8), np.float32)
    x[2, 3] = np.nan
    np.save(tmp_path / "nan.npy", x)
    assert predict.main([str(run), str(tmp_path / "nan.npy"), "-o", str(tmp_path / "o")]) == 2
    assert "nan.npy: 1 of 64 pixels are NaN or infinite" in _one_line_error(capsys)


def test_bad_files_in_a_folder_are_reported_and_every_good_one_is_written(tmp_path, capsys):
    """3 good + 2 bad files at --batch-size 4: 3 outputs, one line per bad file, then the count."""
    run = _checkpoint(tmp_path)
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        np.save(folder / f"good{i}.npy", np.full((8, 8), 0.1 * i, np.float32))
    (folder / "bad0.tif").write_bytes(b"truncated")
    bad = np.zeros((8, 8), np.float32)
    bad[0, 0] = np.inf
    np.save(folder / "bad1.npy", bad)
    rc = predict.main([str(run), str(folder), "-o", str(tmp_path / "o"), "--batch-size", "4"])
    assert rc == 2
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "good0.tif", "good1.tif", "good2.tif"]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3, err
    assert "bad0.tif" in err[0] and "bad1.npy" in err[1]
    assert "2 of 5 input files could not be used" in err[2]


def test_an_unusable_output_folder_is_refused_before_any_work(tmp_path, capsys):
    run = _checkpoint(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros((8, 8), np.float32))
    (tmp_path / "afile").write_text("")
    assert predict.main([str(run), str(tmp_path / "x.npy"), "-o", str(tmp_path / "afile")]) == 2
    assert "afile: -o must be a folder" in _one_line_error(capsys)
    # /proc takes no new folders, whoever runs the test (CI runs as root)
    assert predict.main([str(run), str(tmp_path / "x.npy"), "-o", "/proc/mcnn-predict/o"]) == 2
    assert "/proc/mcnn-predict/o: cannot write predictions here" in _one_line_error(capsys)


# -- a model trained on the STEM simulator: frames in its units, as stem-denoise brings them ------


def _stem_frame(offset: int = 0) -> np.ndarray:
    rng = np.random.default_rng(3)
    return (offset + 4 * rng.poisson(3.0, (32, 40))).astype(np.uint16)  # gain 4 counts/e, 3 e/px


def _calibration(tmp_path, offset: float) -> str:
    path = tmp_path / f"noise-{offset:g}.json"
    path.write_text(json.dumps({"gain_counts_per_e": 4.0, "offset_counts": offset}))
    return str(path)


def test_a_stem_model_gets_the_same_units_as_in_stem_denoise(tiny_stem_run, tmp_path, capsys):
    import mrcfile

    from apps import stem_denoise
    from mcnn.data.image_io import read_raw

    frames = np.stack([_stem_frame(1000), _stem_frame(1000)[::-1]])
    with mrcfile.new(tmp_path / "series.mrc") as mrc:  # a microscope file: uint16, 20 pm pixels
        mrc.set_data(frames)
        mrc.voxel_size = 0.2
    cal = _calibration(tmp_path, 1000.0)
    assert predict.main([str(tiny_stem_run), str(tmp_path / "series.mrc"), "-o",
                         str(tmp_path / "p"), "--calibration", cal, "--device", "cpu"]) == 0
    summary = _last_json(capsys)
    assert summary["units"] == "stem (counts)" and summary["warnings"] == []
    assert stem_denoise.main([str(tiny_stem_run), str(tmp_path / "series.mrc"), "-o",
                              str(tmp_path / "d"), "--calibration", cal, "--device", "cpu"]) == 0
    capsys.readouterr()
    got, want = read_raw(tmp_path / "p" / "series.tif"), read_raw(tmp_path / "d" / "series.tif")
    assert got.data.shape == want.data.shape == (2, 32, 40)
    assert np.allclose(got.data, want.data, rtol=1e-5, atol=1e-3)
    # back in the input's counts (not uint16 / 65535), with the microscope file's pixel size
    assert float(got.data.mean()) == pytest.approx(float(frames.mean()), rel=0.02)
    assert got.pixel_size.to("pm").x == pytest.approx(20.0, rel=1e-4)


def test_resample_gives_what_stem_denoise_resample_gives(tiny_stem_run, tmp_path, capsys):
    """A 10 pm MRC stack through the 20 pm model with --resample: mcnn-predict writes what
    stem-denoise --resample writes (same grid, counts, pixel size); a file without a pixel size
    is a one-line error for that file and the others still run."""
    import mrcfile

    from apps import stem_denoise
    from mcnn.data.image_io import read_raw

    frames = np.stack([_stem_frame(1000), _stem_frame(1000)[::-1]])
    with mrcfile.new(tmp_path / "series.mrc") as mrc:  # 10 pm pixels: half the model's
        mrc.set_data(frames)
        mrc.voxel_size = 0.1
    np.save(tmp_path / "bare.npy", frames[0])
    cal = _calibration(tmp_path, 1000.0)
    rc = predict.main([str(tiny_stem_run), str(tmp_path / "series.mrc"), str(tmp_path / "bare.npy"),
                       "-o", str(tmp_path / "p"), "--calibration", cal, "--device", "cpu",
                       "--resample"])
    out = capsys.readouterr()
    assert rc == 2 and "bare.npy" in out.err and "--pixel-size" in out.err
    summary = json.loads(out.out.strip().splitlines()[-1])
    assert summary["failed"] == [str(tmp_path / "bare.npy")]
    assert not any("pixel size" in w for w in summary["warnings"])
    assert stem_denoise.main([str(tiny_stem_run), str(tmp_path / "series.mrc"), "-o",
                              str(tmp_path / "d"), "--calibration", cal, "--device", "cpu",
                              "--resample"]) == 0
    capsys.readouterr()
    got, want = read_raw(tmp_path / "p" / "series.tif"), read_raw(tmp_path / "d" / "series.tif")
    assert got.data.shape == want.data.shape == (2, 32, 40)
    assert np.allclose(got.data, want.data, rtol=1e-5, atol=1e-3)
    assert got.pixel_size.to("pm").x == pytest.approx(10.0, rel=1e-4)
    # --pixel-size gives the bare frame one: both commands then write the same 10 pm frame
    for cmd, out in ((predict, "b"), (stem_denoise, "bd")):
        assert cmd.main([str(tiny_stem_run), str(tmp_path / "bare.npy"), "-o",
                         str(tmp_path / out), "--calibration", cal, "--device", "cpu",
                         "--resample", "--pixel-size", "10pm"]) == 0
    capsys.readouterr()
    bare, bare_d = read_raw(tmp_path / "b" / "bare.tif"), read_raw(tmp_path / "bd" / "bare.tif")
    assert bare.pixel_size.to("pm").x == pytest.approx(10.0, rel=1e-4)
    assert np.allclose(bare.data, bare_d.data, rtol=1e-5, atol=1e-3)


def test_each_file_keeps_its_own_pixel_size_when_batches_end_between_files(tiny_stem_run,
                                                                           tmp_path, capsys):
    """Batch size 1 writes a file before the next is read: the second file must still be read
    at its own pixel size (resampled, warned about and written with it), as stem-denoise does."""
    from apps import stem_denoise
    from mcnn.data.image_io import PixelSize, read_raw, write_image

    for name, pm in (("a.tif", 20.0), ("b.tif", 10.0)):
        write_image(tmp_path / name, _stem_frame(1000)[None].astype(np.float32),
                    PixelSize(pm, pm, "pm"))
    cal = _calibration(tmp_path, 1000.0)
    files = [str(tmp_path / "a.tif"), str(tmp_path / "b.tif")]
    assert predict.main([str(tiny_stem_run), *files, "-o", str(tmp_path / "p"), "--calibration",
                         cal, "--device", "cpu", "--batch-size", "1", "--resample"]) == 0
    summary = _last_json(capsys)
    assert stem_denoise.main([str(tiny_stem_run), files[1], "-o", str(tmp_path / "d"),
                              "--calibration", cal, "--device", "cpu", "--resample"]) == 0
    capsys.readouterr()
    a, b = read_raw(tmp_path / "p" / "a.tif"), read_raw(tmp_path / "p" / "b.tif")
    assert a.pixel_size.to("pm").x == pytest.approx(20.0, rel=1e-4)
    assert b.pixel_size.to("pm").x == pytest.approx(10.0, rel=1e-4)
    assert np.allclose(b.data, read_raw(tmp_path / "d" / "b.tif").data, rtol=1e-5, atol=1e-3)
    # with --no-resample, the 10 pm file is warned about, by name, and the 20 pm one is not
    assert predict.main([str(tiny_stem_run), *files, "-o", str(tmp_path / "q"), "--calibration",
                         cal, "--device", "cpu", "--batch-size", "1", "--no-resample"]) == 0
    by_file = _last_json(capsys)["warnings_by_file"]
    assert list(by_file) == [files[1]] and "0.5x the training pixel size" in by_file[files[1]][0]
    assert summary["warnings"] == []
    # by default the 10 pm file is resampled (its pixels are 2x finer), as with --resample
    assert predict.main([str(tiny_stem_run), *files, "-o", str(tmp_path / "r"), "--calibration",
                         cal, "--device", "cpu", "--batch-size", "1"]) == 0
    assert _last_json(capsys)["warnings"] == []
    for name in ("a.tif", "b.tif"):
        assert np.array_equal(read_raw(tmp_path / "r" / name).data,
                              read_raw(tmp_path / "p" / name).data)


def test_a_stem_frame_with_an_offset_is_handled_as_without_it(tiny_stem_run, tmp_path, capsys):
    from mcnn.data.image_io import read_raw

    np.save(tmp_path / "plain.npy", _stem_frame(0))
    np.save(tmp_path / "offset.npy", _stem_frame(1000))
    for name, offset in (("plain", 0.0), ("offset", 1000.0)):
        for units in ("counts", "model"):
            assert predict.main([str(tiny_stem_run), str(tmp_path / f"{name}.npy"), "-o",
                                 str(tmp_path / units), "--calibration",
                                 _calibration(tmp_path, offset), "--output-units", units,
                                 "--device", "cpu"]) == 0
    capsys.readouterr()
    model = {n: read_raw(tmp_path / "model" / f"{n}.tif").data for n in ("plain", "offset")}
    counts = {n: read_raw(tmp_path / "counts" / f"{n}.tif").data for n in ("plain", "offset")}
    assert np.allclose(model["offset"], model["plain"], atol=1e-5)
    assert np.allclose(counts["offset"] - 1000.0, counts["plain"], atol=1e-2)


def test_a_stem_model_warns_on_pixel_size_and_dose_far_from_training(tiny_stem_run, tmp_path,
                                                                     capsys):
    from mcnn.data.image_io import PixelSize, write_image

    frame = np.random.default_rng(1).poisson(500.0, (1, 1, 32, 32)).astype(np.float32)
    write_image(tmp_path / "f.tif", frame, PixelSize(0.2, 0.2, "nm"))
    assert predict.main([str(tiny_stem_run), str(tmp_path / "f.tif"), "-o", str(tmp_path / "o"),
                         "--dose-e-per-px", "500", "--device", "cpu"]) == 0
    warnings = _last_json(capsys)["warnings"]
    assert any("outside the training range" in w for w in warnings)
    assert any("10x the training pixel size" in w for w in warnings)


def test_stem_unit_options_on_another_model_are_a_one_line_error(tmp_path, capsys):
    run = _checkpoint(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros((8, 8), np.float32))
    assert predict.main([str(run), str(tmp_path / "x.npy"), "-o", str(tmp_path / "o"),
                         "--dose-e-per-px", "5"]) == 2
    assert "--dose-e-per-px: only for a model trained on STEM frames" in _one_line_error(capsys)
    assert predict.main([str(run), str(tmp_path / "x.npy"), "-o", str(tmp_path / "o"),
                         "--pixel-size", "-5pm"]) == 2  # reaches the check, not argparse's usage
    assert "--pixel-size -5pm: '-5pm': a length must be > 0" in _one_line_error(capsys)
    # --no-resample asks for nothing to be done: accepted on any model (scripts pass it always)
    assert predict.main([str(run), str(tmp_path / "x.npy"), "-o", str(tmp_path / "o"),
                         "--no-resample"]) == 0


def test_flip_ensemble_gives_what_stem_denoise_gives_and_is_refused_off_mirror_symmetric_data(
        tiny_stem_run, tmp_path, capsys):
    from apps import stem_denoise
    from mcnn.data.image_io import read_raw

    np.save(tmp_path / "f.npy", _stem_frame(1000).astype(np.float32))
    cal = _calibration(tmp_path, 1000.0)
    common = ["--calibration", cal, "--device", "cpu", "--flip-ensemble"]
    assert predict.main([str(tiny_stem_run), str(tmp_path / "f.npy"), "-o", str(tmp_path / "p"),
                         *common]) == 0
    assert _last_json(capsys)["flip_ensemble"] is True
    assert stem_denoise.main([str(tiny_stem_run), str(tmp_path / "f.npy"), "-o",
                              str(tmp_path / "d"), *common]) == 0
    capsys.readouterr()
    got, want = read_raw(tmp_path / "p" / "f.tif").data, read_raw(tmp_path / "d" / "f.tif").data
    assert np.allclose(got, want, rtol=1e-5, atol=1e-3)
    # a model that records no training data (or a camera-to-screen map) is refused in one line
    run = _checkpoint(tmp_path)
    assert predict.main([str(run), str(tmp_path / "f.npy"), "-o", str(tmp_path / "o"),
                         "--flip-ensemble"]) == 2
    assert "--flip-ensemble:" in _one_line_error(capsys)
    from apps.predict import check_mirror_symmetric

    with pytest.raises(ValueError, match="'screen_rig' simulator data"):
        check_mirror_symmetric({"kind": "simulated", "simulator": {"name": "screen_rig"}},
                               Path("run"))
    check_mirror_symmetric({"kind": "simulated", "simulator": {"name": "defocus"}}, Path("run"))


SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "microscopy"


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared test data absent")
def test_real_microscope_files_give_stem_denoise_outputs_with_their_pixel_size(tiny_stem_run,
                                                                              tmp_path, capsys):
    from apps import stem_denoise
    from mcnn.data.image_io import read_raw

    names = ["MoS2_Se_implanted_ADF.dm3", "16_STOimage_1.ser"]
    files = [str(SHARED / n) for n in names]
    assert predict.main([str(tiny_stem_run), *files, "-o", str(tmp_path / "p"), "--tile", "256",
                         "--overlap", "16", "--device", "cpu"]) == 0
    summary = _last_json(capsys)
    assert summary["frames"] == 2
    assert not any("camera image" in w for w in summary["warnings"])  # both are STEM scans
    assert predict.main([str(tiny_stem_run), str(SHARED / "Camera_Ceta_Imaging_Micro.emd"), "-o",
                         str(tmp_path / "c"), "--device", "cpu"]) == 0
    assert any("records a camera image (BM-Ceta), not a scanned STEM detector" in w
               for w in _last_json(capsys)["warnings"])
    assert stem_denoise.main([str(tiny_stem_run), *files, "-o", str(tmp_path / "d"), "--tile",
                              "256", "--overlap", "16", "--device", "cpu"]) == 0
    capsys.readouterr()
    for name in names:
        src = read_raw(SHARED / name)
        got = read_raw(tmp_path / "p" / f"{Path(name).stem}.tif")
        want = read_raw(tmp_path / "d" / f"{Path(name).stem}.tif")
        assert got.data.shape == src.data.shape and np.allclose(got.data, want.data, rtol=1e-4,
                                                                 atol=1e-2)
        assert got.pixel_size.to("nm").x == pytest.approx(src.pixel_size.to("nm").x, rel=1e-4)

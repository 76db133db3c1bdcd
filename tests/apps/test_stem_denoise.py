"""stem-denoise end to end with a tiny model trained here on simulated STEM frames: real microscope
files (../shared, skipped when absent) and stacks written by the test in, float32 TIFFs with the
pixel size and frame order out; one-line user errors."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from apps import stem_denoise, stem_figures, stem_units
from mcnn.data.image_io import PixelSize, read_raw

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / ".." / "shared" / "data" / "microscopy"


@pytest.fixture(scope="module")
def run(tiny_stem_run: Path) -> Path:
    return tiny_stem_run


def _ramp(h: int, w: int) -> np.ndarray:
    """Brightness from 0.2 to 2 across the frame: the range a single-frame noise fit needs to fix
    the detector offset (a flat field does not; mcnn.stem.calibration.MAX_OFFSET_ERROR)."""
    return np.linspace(0.2, 2.0, w)[None, :] * np.ones((h, 1))


def _summary(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_stack_in_stack_out_in_counts_with_pixel_size(run, tmp_path, capsys):
    import mrcfile

    rng = np.random.default_rng(0)
    frames = (2000 + 4 * rng.poisson(3.0, (3, 32, 48))).astype(np.float32)
    frames[1] += 8  # frame order must be kept
    with mrcfile.new(tmp_path / "series.mrc") as mrc:
        mrc.set_data(frames)
        mrc.voxel_size = 0.2  # angstrom -> 20 pm, the training pixel size
    out = tmp_path / "out"
    cal = tmp_path / "noise.json"
    json.dump({"gain_counts_per_e": 4.0, "offset_counts": 2000.0}, cal.open("w"))
    rc = stem_denoise.main([str(run), str(tmp_path / "series.mrc"), "-o", str(out),
                            "--calibration", str(cal), "--compare", str(tmp_path / "cmp.png")])
    assert rc == 0
    summary = _summary(capsys)
    assert summary["frames"] == 3 and summary["frames_per_s"] > 0 and summary["warnings"] == []
    raw = read_raw(out / "series.tif")
    assert raw.axes == "NYX" and raw.data.shape == (3, 32, 48) and raw.data.dtype == np.float32
    assert raw.pixel_size == PixelSize(pytest.approx(20.0, rel=1e-4),
                                       pytest.approx(20.0, rel=1e-4), "pm")
    means = raw.data.mean(axis=(1, 2))
    assert np.allclose(means, frames.mean(axis=(1, 2)), rtol=0.02)  # back in counts (offset 2000)
    record = json.loads((out / "stem-denoise.json").read_text())
    doses = [f["dose_e_per_px"] for f in record["files"][0]["frames_units"]]
    assert doses[0] == pytest.approx(3.0, rel=0.05) and doses[1] == pytest.approx(5.0, rel=0.05)
    assert (tmp_path / "cmp.png").stat().st_size > 10_000


def test_warns_when_pixel_size_and_dose_are_far_from_training(run, tmp_path, capsys):
    from mcnn.data.image_io import write_image

    rng = np.random.default_rng(1)
    frame = rng.poisson(500.0, (1, 1, 32, 32)).astype(np.float32)
    write_image(tmp_path / "f.tif", frame, PixelSize(0.2, 0.2, "nm"))
    rc = stem_denoise.main([str(run), str(tmp_path / "f.tif"), "-o", str(tmp_path / "o"),
                            "--dose-e-per-px", "500"])
    assert rc == 0
    warnings = _summary(capsys)["warnings"]
    assert any("outside the training range" in w for w in warnings)
    assert any("10x the training pixel size" in w for w in warnings)


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared test data absent")
def test_real_microscope_files(run, tmp_path, capsys):
    names = ["MoS2_Se_implanted_ADF.dm3", "16_STOimage_1.ser", "Camera_Ceta_Imaging_Micro.emd"]
    out = tmp_path / "out"
    rc = stem_denoise.main([str(run), *[str(SHARED / n) for n in names], "-o", str(out),
                            "--tile", "256", "--overlap", "16"])
    assert rc == 0
    summary = _summary(capsys)
    assert summary["frames"] == 3
    # the Velox file says its image came from a camera: said for that file, and only for it
    camera = [f for f, said in summary["warnings_by_file"].items()
              if any("records a camera image (BM-Ceta), not a scanned STEM detector" in w
                     for w in said)]
    assert camera == [str(SHARED / "Camera_Ceta_Imaging_Micro.emd")]
    assert [o["acquisition"] for o in summary["outputs"]] == ["scan", "scan", "camera"]
    # the DM3 (12.7 pm, 7.4 e/px) is finer than the model's 20 pm: denoised at 20 pm by default;
    # the SER (10 pm) too, but binned its 29 e/px would be 116 per model pixel, far above the
    # training's 0.04-10: as recorded; the Ceta image (3.1 nm) is not upsampled
    factors = [o["resample"] and o["resample"]["factor_yx"][1] for o in summary["outputs"]]
    assert factors[0] == pytest.approx(12.6953125 / 20, rel=1e-4)
    assert factors[1] is None and factors[2] is None
    for name in names:
        src, got = read_raw(SHARED / name), read_raw(out / (Path(name).stem + ".tif"))
        assert got.data.shape == src.data.shape and got.data.dtype == np.float32
        assert np.isfinite(got.data).all()
        assert got.pixel_size.to("nm").x == pytest.approx(src.pixel_size.to("nm").x, rel=1e-4)


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared test data absent")
def test_eels_spectrum_is_a_one_line_error(run, tmp_path, capsys):
    rc = stem_denoise.main([str(run), str(SHARED / "08_carbon.dm3"), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert [e for e in err if e.startswith("stem-denoise: error:")] == [
        e for e in err if "08_carbon.dm3" in e and "not an image" in e]


def test_user_errors_exit_2(run, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert stem_denoise.main([str(run), str(tmp_path / "empty"), "-o", str(tmp_path / "o")]) == 2
    assert "holds no image frames" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{}")
    np.save(tmp_path / "f.npy", np.ones((32, 32), np.float32))
    assert stem_denoise.main([str(run), str(tmp_path / "f.npy"), "-o", str(tmp_path / "o"),
                              "--calibration", str(tmp_path / "bad.json")]) == 2
    assert "bad.json: not a noise calibration" in capsys.readouterr().err


def test_option_and_input_mistakes_are_one_line_naming_them(run, tmp_path, capsys):
    from mcnn.data.image_io import write_image

    rng = np.random.default_rng(4)
    np.save(tmp_path / "f.npy", rng.poisson(3.0, (32, 32)).astype(np.float32))
    f, o = str(tmp_path / "f.npy"), str(tmp_path / "o")
    for dose in ("inf", "nan", "0", "-3"):
        assert stem_denoise.main([str(run), f, "-o", o, f"--dose-e-per-px={dose}"]) == 2
        assert _one_error_line(capsys).startswith(f"stem-denoise: error: --dose-e-per-px {dose}")
    # A value starting with "-" reaches the check (argparse alone says "expected one argument")
    assert stem_denoise.main([str(run), f, "-o", o, "--dose-e-per-px", "-1e3"]) == 2
    assert "--dose-e-per-px -1000.0: expected a finite number" in _one_error_line(capsys)
    assert stem_denoise.main([str(run), f, "-o", o, "--pixel-size", "-5pm"]) == 2
    assert "--pixel-size -5pm: '-5pm': a length must be > 0" in _one_error_line(capsys)
    assert stem_denoise.main([str(run), f, "-o", o, "--adapt-steps", "-1"]) == 2
    assert "--adapt-steps -1: must be >= 0" in _one_error_line(capsys)
    assert stem_denoise.main([str(run), "-o", o]) == 2
    assert "no inputs: give files or folders, or --watch FOLDER" in _one_error_line(capsys)
    assert stem_denoise.main([str(run), f, "-o", o, "--idle-exit", "5"]) == 2
    assert "--idle-exit 5.0: takes seconds > 0, with --watch" in _one_error_line(capsys)
    assert stem_denoise.main([str(run), "-o", o, "--watch", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: --watch needs a folder" in _one_error_line(capsys)
    assert stem_denoise.main([str(run), "-o", o, "--watch", str(tmp_path), "--save-calibration",
                              str(tmp_path / "c.json")]) == 2
    assert "--save-calibration: fits on the inputs' frames" in _one_error_line(capsys)
    assert stem_denoise.main([str(run), "-o", str(tmp_path), "--watch", str(tmp_path)]) == 2
    assert "-o is the watched folder" in _one_error_line(capsys)
    (tmp_path / "afile").write_text("x")
    assert stem_denoise.main([str(run), f, "-o", str(tmp_path / "afile")]) == 2
    assert "afile: exists and is not a folder" in _one_error_line(capsys)
    for name, shape in (("row.tif", (1, 1, 1, 256)), ("tiny.tif", (1, 1, 8, 8))):
        write_image(tmp_path / name, rng.poisson(3.0, shape).astype(np.float32))
        assert stem_denoise.main([str(run), str(tmp_path / name), "-o", o]) == 2
        line = _one_error_line(capsys)
        assert name in line and "a STEM frame needs at least 16 x 16 px" in line
        assert not Path(o).exists()  # refused before writing: no empty output folder left
    # a calibration with wrong fields names them
    (tmp_path / "cal.json").write_text(json.dumps({"gain_counts_per_e": -1}))
    assert stem_denoise.main([str(run), f, "-o", o, "--calibration",
                              str(tmp_path / "cal.json")]) == 2
    line = _one_error_line(capsys)
    assert "gain_counts_per_e:" in line and "offset_counts:" in line
    # a "dark" frame brighter than the frames is refused, and no calibration file is left
    yy, xx = np.mgrid[0:64, 0:64]
    clean = 1 + 0.8 * np.sin(xx / 4.0) * np.cos(yy / 5.0)
    np.save(tmp_path / "series.npy", (100 + 3 * rng.poisson(5.0 * clean, (3, 64, 64)))
            .astype(np.float32))
    np.save(tmp_path / "bright.npy", np.full((64, 64), 1000.0, np.float32))
    assert stem_denoise.main([str(run), str(tmp_path / "series.npy"), "-o", o,
                              "--save-calibration", str(tmp_path / "c.json"), "--dark",
                              str(tmp_path / "bright.npy")]) == 2
    assert "not a dark frame" in _one_error_line(capsys)
    assert not (tmp_path / "c.json").exists()


def test_resampling_far_past_memory_is_refused(run, tmp_path, capsys):
    from mcnn.data.image_io import write_image

    frame = np.random.default_rng(5).poisson(3.0, (1, 1, 512, 512)).astype(np.float32)
    write_image(tmp_path / "coarse.tif", frame, PixelSize(3.0, 3.0, "nm"))  # 150x the model's
    assert stem_denoise.main([str(run), str(tmp_path / "coarse.tif"), "-o", str(tmp_path / "o"),
                              "--resample"]) == 2
    line = _one_error_line(capsys)
    assert "coarse.tif" in line and "far coarser than the model's" in line


def test_each_file_gets_its_own_warnings_and_the_figure_is_not_in_the_rate(run, tmp_path,
                                                                          capsys, caplog):
    """Two files with the same warning: each is warned about (and listed by file); the --compare
    figure's time is reported apart from the denoising rate."""
    rng = np.random.default_rng(7)
    for name in ("a.npy", "b.npy"):
        np.save(tmp_path / name, (100 + 3 * rng.poisson(4.0 * _ramp(64, 64))).astype(np.float32))
    assert stem_denoise.main([str(run), str(tmp_path / "a.npy"), str(tmp_path / "b.npy"),
                              "-o", str(tmp_path / "o"), "--compare",
                              str(tmp_path / "cmp.png")]) == 0
    out = capsys.readouterr()
    summary = json.loads(out.out)
    by_file = summary["warnings_by_file"]
    assert set(by_file) == {str(tmp_path / "a.npy"), str(tmp_path / "b.npy")}
    assert all(any(w.startswith("no noise calibration:") for w in ws) for ws in by_file.values())
    assert caplog.text.count("no noise calibration:") == 2
    # two 64^2 frames through the tiny model take milliseconds, the figure most of a second
    assert 0 < summary["seconds"] < summary["figure_s"]


def test_adapt_on_the_inputs_and_save_the_adapted_model(run, tmp_path, capsys):
    from mcnn.infer import Predictor

    rng = np.random.default_rng(2)
    np.save(tmp_path / "f.npy", rng.poisson(3.0, (2, 32, 32)).astype(np.float32))
    saved = tmp_path / "adapted" / "model.safetensors"
    rc = stem_denoise.main([str(run), str(tmp_path / "f.npy"), "-o", str(tmp_path / "o"),
                            "--dose-e-per-px", "3", "--adapt-steps", "2",
                            "--save-adapted", str(saved)])
    assert rc == 0 and _summary(capsys)["frames"] == 2
    adapted = Predictor.from_checkpoint(saved, device="cpu")
    base = Predictor.from_checkpoint(run, device="cpu")
    assert adapted.training_data == base.training_data
    a = dict(adapted.model.named_parameters())
    assert any(not torch.equal(p, a[n]) for n, p in base.model.named_parameters())
    record = json.loads(saved.with_suffix(".adaptation.json").read_text())
    assert record["steps"] == 2 and record["span_px"] == 0  # white Poisson noise: no row span
    assert stem_denoise.main([str(run), str(tmp_path / "f.npy"), "-o", str(tmp_path / "o"),
                              "--adapt-steps", "2", "--adapt-span", "-1"]) == 2
    assert "--adapt-span -1: must be 0-32 px" in capsys.readouterr().err


def test_output_names_never_collide():
    out = Path("o")
    names = stem_denoise.output_paths([Path("a.dm3"), Path("x/a.tif"), Path("a_2.npy")], out)
    assert [p.name for p in names] == ["a.tif", "a_2.tif", "a_2_2.tif"]
    used: set[str] = set()  # files arriving one by one (--watch) share the names used so far
    got = [stem_denoise.output_paths([Path(f)], out, used)[0].name
           for f in ("s.ser", "s.emd", "s_2.dm3")]
    assert got == ["s.tif", "s_2.tif", "s_2_2.tif"]


def test_scale_bar_labels_use_a_readable_unit():
    assert stem_figures.length_label(2000.0, "pm") == "2 nm"
    assert stem_figures.length_label(500.0, "pm") == "500 pm"
    assert stem_figures.length_label(5000.0, "nm") == "5 µm"
    assert stem_figures.length_label(3.0, "1/nm") == "3 1/nm"


def test_scale_bar_is_drawn_exactly_its_length():
    """Rendered at one screen pixel per image pixel: the yellow bar spans the length it names
    (20 px for 200 pm at 10 pm/px), not the half line widths that round ends add."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(2, 2), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(np.full((200, 200), 0.8), cmap="gray", vmin=0, vmax=1, aspect="auto")
    ax.axis("off")
    stem_figures.scale_bar(ax, (200, 200), PixelSize(10.0, 10.0, "pm"))
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    plt.close(fig)
    yellow = (rgba[..., 0] > 200) & (rgba[..., 1] > 200) & (rgba[..., 2] < 80)
    row = yellow[int(200 * 0.92)]
    assert row.sum() == pytest.approx(200 / 5 / 10 * 10 / 2, abs=1.5)  # 200 pm bar = 20 px
    dark = rgba[int(200 * 0.92) - 2, :, :3].max(axis=1) < 60  # the outline above the bar
    assert dark[row].mean() > 0.8


def test_save_calibration_fits_the_inputs_and_uses_it(run, tmp_path, capsys):
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:96, 0:96]
    clean = 1 + 0.8 * np.sin(xx / 4.0) * np.cos(yy / 5.0)
    frames = (500 + 5.0 * rng.poisson(6.0 * clean, (6, 96, 96))).astype(np.float32)
    np.save(tmp_path / "series.npy", frames)
    dark = (500 + 2.0 * rng.standard_normal((96, 96))).astype(np.float32)
    np.save(tmp_path / "dark.npy", dark)
    cal_path = tmp_path / "noise.json"
    rc = stem_denoise.main([str(run), str(tmp_path / "series.npy"), "-o", str(tmp_path / "o"),
                            "--save-calibration", str(cal_path), "--dark",
                            str(tmp_path / "dark.npy")])
    assert rc == 0
    summary = _summary(capsys)
    cal = json.loads(cal_path.read_text())
    assert cal["method"] == "frame_pairs" and cal["offset_from"] == "dark"
    assert cal["gain_counts_per_e"] == pytest.approx(5.0, rel=0.05)
    assert cal["offset_counts"] == pytest.approx(500.0, abs=0.5)
    assert summary["calibration"]["gain_counts_per_e"] == cal["gain_counts_per_e"]


def test_stem_view_gives_file_frames_the_units_stem_denoise_gives_them(run, tmp_path):
    """The live viewer reads microscope counts as stored and brings them into model units by the
    same function as stem-denoise (offset and gain estimated from the frame)."""
    from acquire.sources.series import FrameSeriesSource
    from apps.live.stem_view import StemProcessor
    from mcnn.infer import Predictor
    from mcnn.stem.normalise import frame_to_model_units

    rng = np.random.default_rng(2)
    counts = (1000 + 4 * rng.poisson(3.0 * _ramp(32, 32))).astype(np.uint16)
    np.save(tmp_path / "f.npy", counts)
    processor = StemProcessor(Predictor.from_checkpoint(run, device="cpu"))
    with FrameSeriesSource(tmp_path / "f.npy", fps=None) as source:
        frame = source.read()
    assert frame.image.dtype == np.uint16  # as stored, not / 65535
    x = processor.model_input(frame)
    want, units, _ = frame_to_model_units(counts, training_data=processor.predictor.training_data)
    assert x.shape == (32, 32, 1) and np.allclose(x[..., 0], want)
    assert units.offset_counts == pytest.approx(1000, abs=60)
    assert float(x.mean()) == pytest.approx(1.0, rel=1e-3)


# -- --resample and --pixel-size ------------------------------------------------------------------


def _stem_counts_10pm(n: int = 2, size: int = 64, dose: float = 1.0) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Simulated frames at 10 pm pixels (half the tiny model's 20 pm): (clean mean 1, counts with
    offset 500 and gain 4 counts/e at ``dose`` e/px)."""
    from mcnn.physics.config import StemConfig
    from mcnn.physics.procedural import ProceduralContent
    from mcnn.physics.stem import StemAdfSimulator

    sim = StemAdfSimulator(StemConfig(pixel_size_pm=10.0, spacing_pm_range=(160.0, 450.0),
                                      atom_sigma_pm_range=(20.0, 55.0)))
    clean = sim.clean(n, (size, size), torch.Generator().manual_seed(0),
                      ProceduralContent())[:, 0].double().numpy()
    counts = 500 + 4 * np.random.default_rng(0).poisson(dose * clean)
    return clean, counts.astype(np.float32)


def _noise_json(tmp_path: Path) -> str:
    path = tmp_path / "noise.json"
    path.write_text(json.dumps({"gain_counts_per_e": 4.0, "offset_counts": 500.0}))
    return str(path)


def test_resample_denoises_at_the_training_pixel_size_and_writes_the_input_grid(run, tmp_path,
                                                                                capsys):
    """A 10 pm stack through a 20 pm model: 2x2 binned (electrons summed, so the dose per model
    pixel is 4x), denoised there, brought back to 64 x 64 at 10 pm; no pixel-size warning. Pixels
    2x finer than the model's are resampled by default; --no-resample denoises them as recorded,
    with the warning."""
    from mcnn.data.image_io import write_image
    from mcnn.infer import Predictor

    clean, counts = _stem_counts_10pm()
    write_image(tmp_path / "f.tif", counts[:, None], PixelSize(10.0, 10.0, "pm"))
    common = [str(run), str(tmp_path / "f.tif"), "--calibration", _noise_json(tmp_path)]
    assert stem_denoise.main([*common, "-o", str(tmp_path / "plain"), "--no-resample"]) == 0
    warnings = _summary(capsys)["warnings"]
    assert any("0.5x the training pixel size" in w and "denoised on its own grid" in w
               for w in warnings)
    plain = json.loads((tmp_path / "plain" / "stem-denoise.json").read_text())["files"][0]
    assert plain["resample"] is None
    assert stem_denoise.main([*common, "-o", str(tmp_path / "auto"), "--output-units",
                              "model"]) == 0
    assert not any("pixel size" in w for w in _summary(capsys)["warnings"])
    auto = json.loads((tmp_path / "auto" / "stem-denoise.json").read_text())["files"][0]
    assert auto["resample"]["factor_yx"] == [0.5, 0.5]

    assert stem_denoise.main([*common, "-o", str(tmp_path / "o"), "--resample",
                              "--output-units", "model", "--compare",
                              str(tmp_path / "cmp.png")]) == 0
    summary = _summary(capsys)
    assert not any("pixel size" in w for w in summary["warnings"])
    out = read_raw(tmp_path / "o" / "f.tif")
    assert out.data.shape == (2, 64, 64)
    assert out.pixel_size.to("pm").x == pytest.approx(10.0, rel=1e-4)
    record = json.loads((tmp_path / "o" / "stem-denoise.json").read_text())["files"][0]
    assert record["resample"]["factor_yx"] == [0.5, 0.5]
    assert record["resample"]["model_shape_px"] == [32, 32]
    electrons = (counts - 500.0) / 4.0
    for frame, units in zip(electrons, record["frames_units"], strict=True):
        assert units["dose_e_per_input_px"] == pytest.approx(frame.mean(), rel=1e-4)
        assert units["dose_e_per_px"] == pytest.approx(4 * frame.mean(), rel=1e-4)
    # what the network saw: 2x2 sums of electrons over the dose per 20 pm pixel, mean 1
    binned = electrons.reshape(2, 32, 2, 32, 2).sum(axis=(2, 4))
    x = (binned / binned.mean(axis=(1, 2), keepdims=True)).astype(np.float32)
    predictor = Predictor.from_checkpoint(run, device="cpu")
    y = np.stack(list(predictor.stream(list(x), batch_size=2)))
    want = torch.nn.functional.interpolate(torch.from_numpy(y)[:, None].double(), size=(64, 64),
                                           mode="bilinear", align_corners=False)[:, 0].numpy()
    assert np.allclose(out.data, want, atol=1e-4)
    assert np.array_equal(read_raw(tmp_path / "auto" / "f.tif").data, out.data)  # the default
    assert (tmp_path / "cmp.png").stat().st_size > 10_000
    # back in counts: the input's level (electrons per input pixel, offset and gain)
    assert stem_denoise.main([*common, "-o", str(tmp_path / "c"), "--resample"]) == 0
    capsys.readouterr()
    got = read_raw(tmp_path / "c" / "f.tif").data
    assert np.allclose(got.mean(axis=(1, 2)), counts.mean(axis=(1, 2)), rtol=0.01)


def test_resample_upsampling_warns_once_that_the_noise_becomes_correlated(run, tmp_path, capsys):
    rng = np.random.default_rng(4)
    np.save(tmp_path / "a.npy", rng.poisson(6.0, (2, 24, 24)).astype(np.float32))
    np.save(tmp_path / "b.npy", rng.poisson(6.0, (24, 24)).astype(np.float32))
    rc = stem_denoise.main([str(run), str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "-o",
                            str(tmp_path / "o"), "--resample", "--pixel-size", "0.4A"])
    assert rc == 0
    summary = _summary(capsys)
    up = [w for w in summary["warnings"] if "correlates the noise" in w]
    assert len(up) == 1 and "upsamples this file" in up[0]
    assert all(up[0] in summary["warnings_by_file"][str(tmp_path / f)] for f in ("a.npy", "b.npy"))
    assert read_raw(tmp_path / "o" / "a.tif").data.shape == (2, 24, 24)
    record = json.loads((tmp_path / "o" / "stem-denoise.json").read_text())["files"][0]
    assert record["resample"]["factor_yx"] == [2.0, 2.0]
    assert record["resample"]["model_shape_px"] == [48, 48]


def test_pixel_size_option_sets_the_pixel_size_of_files_without_one(run, tmp_path, capsys):
    rng = np.random.default_rng(5)
    np.save(tmp_path / "f.npy", (100 + rng.poisson(3.0, (32, 32))).astype(np.float32))
    rc = stem_denoise.main([str(run), str(tmp_path / "f.npy"), "-o", str(tmp_path / "o"),
                            "--pixel-size", "10pm", "--no-resample"])
    assert rc == 0
    assert any("0.5x the training pixel size" in w for w in _summary(capsys)["warnings"])
    assert read_raw(tmp_path / "o" / "f.tif").pixel_size.to("pm").x == pytest.approx(10.0)
    # by default the 10 pm frame is denoised at the model's 20 pm; without a pixel size it is
    # taken to be the model's, and that is said
    assert stem_denoise.main([str(run), str(tmp_path / "f.npy"), "-o", str(tmp_path / "a"),
                              "--pixel-size", "10pm"]) == 0
    assert not any("pixel size" in w for w in _summary(capsys)["warnings"])
    record = json.loads((tmp_path / "a" / "stem-denoise.json").read_text())["files"][0]
    assert record["resample"]["factor_yx"] == [0.5, 0.5]
    # ... unless binning would put more electrons on a model pixel than training knew (10 e/px
    # x 2): 6 e/px per 10 pm pixel is 24 per 20 pm one
    for dose, resampled in (("1", True), ("6", False)):
        assert stem_denoise.main([str(run), str(tmp_path / "f.npy"), "-o", str(tmp_path / dose),
                                  "--pixel-size", "10pm", "--dose-e-per-px", dose]) == 0
        capsys.readouterr()
        record = json.loads((tmp_path / dose / "stem-denoise.json").read_text())["files"][0]
        assert (record["resample"] is not None) == resampled, dose
    assert stem_denoise.main([str(run), str(tmp_path / "f.npy"), "-o", str(tmp_path / "b")]) == 0
    assert [w for w in _summary(capsys)["warnings"] if "pixel size" in w] == [
        "no pixel size in length units: taken to be the model's 20 pm (if it is not, give it "
        "with --pixel-size: at another pixel size the columns are not as wide in pixels as the "
        "model learnt)"]


def test_resampling_by_default_only_downsamples_pixels_well_finer_than_the_models(tmp_path):
    """auto: both axes finer than 20 pm / 1.5 (13.33 pm) -> resampled; coarser, barely finer,
    anisotropic-coarse, unknown or too small -> as recorded; --resample does every one it can,
    --no-resample none."""
    plan = stem_units.plan_resampling
    f = tmp_path / "f.tif"

    def pm(y: float, x: float | None = None) -> PixelSize:
        return PixelSize(y, y if x is None else x, "pm")

    assert plan(f, (256, 256), pm(13.3), 20.0, "auto").shape_model_px == (170, 170)
    assert plan(f, (256, 256), PixelSize(0.01, 0.01, "nm"), 20.0, "auto").factor_yx == (0.5, 0.5)
    for size in (pm(13.4), pm(40.0), pm(5.0, 25.0), pm(25.0, 5.0), None,
                 PixelSize(1.0, 1.0, "px")):
        assert plan(f, (256, 256), size, 20.0, "auto") is None, size
    assert plan(f, (20, 20), pm(10.0), 20.0, "auto") is None  # 10 x 10 px would be too small
    assert plan(f, (256, 256), pm(10.0), None, "auto") is None  # the model records no size
    assert plan(f, (256, 256), pm(10.0), 20.0, "off") is None
    # the dose: binned 2x2, 4x the electrons per model pixel; above the ceiling, as recorded
    for dose, resampled in ((4.9, True), (5.1, False), (None, True)):
        got = plan(f, (256, 256), pm(10.0), 20.0, "auto", frame_dose=lambda d=dose: d,
                   dose_ceiling=20.0)
        assert (got is not None) == resampled, dose
    assert plan(f, (256, 256), pm(10.0), 20.0, "on", frame_dose=lambda: 50.0,
                dose_ceiling=20.0) is not None  # --resample: whatever the dose
    asked = []
    plan(f, (256, 256), pm(15.0), 20.0, "auto", frame_dose=lambda: asked.append(1) or 1.0,
         dose_ceiling=20.0)
    assert asked == []  # the frame is not read where the pixel size already decides
    assert plan(f, (128, 128), pm(40.0), 20.0, "on").upsamples
    assert plan(f, (256, 256), pm(25.0, 5.0), 20.0, "on").shape_model_px == (320, 64)
    with pytest.raises(ValueError, match="f.tif: --resample needs the frames' pixel size"):
        plan(f, (256, 256), None, 20.0, "on")
    with pytest.raises(ValueError, match="smaller than 16 px"):
        plan(f, (20, 20), pm(10.0), 20.0, "on")


def test_anisotropic_pixels_are_warned_about_by_the_axis_farther_off():
    from mcnn.stem.normalise import FrameUnits, training_warnings

    units = FrameUnits(offset_counts=0.0, gain_counts_per_e=1.0, dose_e_per_px=1.0,
                       source="given", dose_from="given")
    training = {"simulator": {"name": "stem", "pixel_size_pm": 20.0,
                              "dose_e_per_px_range": [0.04, 10.0]}}
    for yx, said in (((25.0, 5.0), "pixel size 5 pm is 0.25x"), ((5.0, 25.0), "pixel size 5 pm"),
                     ((20.0, 40.0), "pixel size 40 pm is 2x")):
        warnings = training_warnings(units, yx, training)
        assert len(warnings) == 1 and warnings[0].startswith(said), (yx, warnings)
    assert training_warnings(units, (18.0, 22.0), training) == []


def test_resample_and_no_resample_exclude_each_other(run, tmp_path, capsys):
    np.save(tmp_path / "f.npy", np.ones((32, 32), np.float32))
    with pytest.raises(SystemExit) as stop:
        stem_denoise.main([str(run), str(tmp_path / "f.npy"), "-o", str(tmp_path / "o"),
                           "--resample", "--no-resample"])
    assert stop.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_pixel_size_values():
    parse = stem_units.parse_pixel_size
    assert parse("10pm") == PixelSize(10.0, 10.0, "pm")
    assert parse("12") == PixelSize(12.0, 12.0, "pm")  # a bare number is pm
    assert parse("1.5A").x == pytest.approx(150.0) and parse("1.5A").unit == "pm"
    assert parse("0.01nm") == PixelSize(0.01, 0.01, "nm")


def _one_error_line(capsys) -> str:
    err = [e for e in capsys.readouterr().err.strip().splitlines()
           if e.startswith("stem-denoise: error:")]
    assert len(err) == 1
    return err[0]


def test_resample_and_pixel_size_user_errors_exit_2(run, tmp_path, capsys):
    from mcnn.infer import Predictor
    from mcnn.weights import save_model

    np.save(tmp_path / "f.npy", np.random.default_rng(6).poisson(3.0, (32, 32)).astype(np.float32))
    f, o = str(tmp_path / "f.npy"), str(tmp_path / "o")
    for bad in ("ten", "-3pm", "10 furlongs"):
        assert stem_denoise.main([str(run), f, "-o", o, f"--pixel-size={bad}"]) == 2
        assert f"--pixel-size {bad}:" in _one_error_line(capsys)
    assert stem_denoise.main([str(run), f, "-o", o, "--resample"]) == 2
    line = _one_error_line(capsys)
    assert "f.npy: --resample needs the frames' pixel size" in line and "--pixel-size" in line
    assert stem_denoise.main([str(run), f, "-o", o, "--resample", "--pixel-size", "5pm"]) == 2
    assert "would be 8 x 8 px, smaller than 16 px" in _one_error_line(capsys)
    # a checkpoint that records no training pixel size
    base = Predictor.from_checkpoint(run, device="cpu")
    data = json.loads(json.dumps(base.training_data))
    del data["simulator"]["pixel_size_pm"]
    for key in ("spacing_pm_range", "atom_sigma_pm_range"):
        data["simulator"].pop(key, None)
    ckpt = tmp_path / "nopx" / "model.safetensors"
    ckpt.parent.mkdir()
    save_model(base.model, ckpt, data)
    assert stem_denoise.main([str(ckpt), f, "-o", o, "--resample", "--pixel-size", "10pm"]) == 2
    line = _one_error_line(capsys)
    assert "model.safetensors: --resample needs the model's training pixel size" in line
    assert not (tmp_path / "o" / "f.tif").exists()


def test_stem_view_resample_shows_what_stem_denoise_resample_writes(run, tmp_path, capsys):
    """stem-view --resample: the denoised panel of a 10 pm file frame is stem-denoise --resample's
    output (model units, the frame's own 64 x 64 grid); the raw panel is the frame in model units
    on that grid. Without a pixel size it falls back to no resampling, said once."""
    from acquire.sources.series import FrameSeriesSource
    from apps.live.stem_view import StemProcessor
    from mcnn.data.image_io import write_image
    from mcnn.infer import Predictor
    from mcnn.stem.normalise import frame_to_model_units

    _, counts = _stem_counts_10pm(n=1)
    write_image(tmp_path / "f.tif", counts[:, None], PixelSize(10.0, 10.0, "pm"))
    assert stem_denoise.main([str(run), str(tmp_path / "f.tif"), "-o", str(tmp_path / "o"),
                              "--resample", "--output-units", "model"]) == 0
    capsys.readouterr()
    want = read_raw(tmp_path / "o" / "f.tif").data
    predictor = Predictor.from_checkpoint(run, device="cpu")
    processor = StemProcessor(predictor, resample="on")
    with FrameSeriesSource(tmp_path / "f.tif", fps=None) as source:
        frame = source.read()
    panels = processor(frame).panels
    assert panels["denoised"].shape == (64, 64)
    assert np.allclose(panels["denoised"], want.reshape(64, 64), atol=1e-4)
    raw, _, _ = frame_to_model_units(frame.image[..., 0])
    assert np.allclose(panels["raw"], raw, rtol=1e-4, atol=1e-4)
    np.save(tmp_path / "n.npy", counts[0])
    with FrameSeriesSource(tmp_path / "n.npy", fps=None) as source:
        bare = source.read()
    assert processor(bare).panels["denoised"].shape == (64, 64)
    assert any("without --resample" in w for w in processor.warned)
    plain = StemProcessor(predictor, resample="off")  # the network on the frame's grid
    assert plain.resampling(frame) is None
    auto = StemProcessor(predictor)  # the default: 2x finer pixels are resampled, as stem-denoise
    assert auto.resampling(frame) == processor.resampling(frame)
    assert np.allclose(auto(frame).panels["denoised"], want.reshape(64, 64), atol=1e-4)


def test_flip_ensemble_makes_the_output_of_a_mirrored_frame_the_mirrored_output(
        run, tmp_path, capsys):
    """Averaged over the four mirror images, the denoiser commutes with mirroring exactly; a
    single pass does not (a trained network is not symmetric)."""
    import tifffile

    rng = np.random.default_rng(3)
    frame = (2000 + 4 * rng.poisson(1.0, (32, 48))).astype(np.float32)
    tifffile.imwrite(tmp_path / "pair.tif", np.stack([frame, frame[:, ::-1], frame[::-1]]),
                     photometric="minisblack")
    cal = tmp_path / "noise.json"
    json.dump({"gain_counts_per_e": 4.0, "offset_counts": 2000.0}, cal.open("w"))
    outs = {}
    for flag in ([], ["--flip-ensemble"]):
        out = tmp_path / ("flips" if flag else "plain")
        assert stem_denoise.main([str(run), str(tmp_path / "pair.tif"), "-o", str(out),
                                  "--calibration", str(cal), *flag]) == 0
        assert _summary(capsys)["flip_ensemble"] is bool(flag)
        outs[bool(flag)] = read_raw(out / "pair.tif").data
    plain, flips = outs[False], outs[True]
    scale = float(frame.mean() - 2000)  # the signal, in counts
    assert np.abs(flips[1] - flips[0][:, ::-1]).max() < 1e-4 * scale
    assert np.abs(flips[2] - flips[0][::-1]).max() < 1e-4 * scale
    assert np.abs(plain[1] - plain[0][:, ::-1]).max() > 1e-3 * scale
    assert np.abs(flips[0] - plain[0]).mean() < 0.25 * scale  # the same denoiser, averaged


def test_a_hyperspy_file_is_denoised_with_its_pixel_size(run, tmp_path, capsys):
    """What HyperSpy users save (``s.save("scan.hspy")``) goes straight in."""
    from rsciio.hspy import file_writer

    rng = np.random.default_rng(4)
    frames = (1000 + 4 * rng.poisson(2.0 * _ramp(32, 40), (2, 32, 40))).astype(np.float32)
    axes = [{"name": n, "size": k, "scale": sc, "offset": 0.0, "units": u, "navigate": nav}
            for n, k, sc, u, nav in (("frame", 2, 1.0, "", True), ("y", 32, 0.02, "nm", False),
                                     ("x", 40, 0.02, "nm", False))]
    file_writer(str(tmp_path / "scan.hspy"), {
        "data": frames, "axes": axes, "metadata": {"General": {"title": "HAADF"}},
        "original_metadata": {}, "attributes": {"_lazy": False}, "tmp_parameters": {},
        "learning_results": {}, "models": {}, "package_info": {"name": "hyperspy"}})
    assert stem_denoise.main([str(run), str(tmp_path / "scan.hspy"), "-o",
                              str(tmp_path / "out")]) == 0
    assert _summary(capsys)["frames"] == 2
    out = read_raw(tmp_path / "out" / "scan.tif")
    assert out.data.shape == (2, 32, 40) and out.pixel_size.to("pm").x == pytest.approx(20.0)
    assert np.allclose(out.data.mean(axis=(1, 2)), frames.mean(axis=(1, 2)), rtol=0.02)


def _npy_bytes(frames: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, frames)
    return buf.getvalue()


def test_watch_denoises_files_as_the_microscope_finishes_them(run, tmp_path, capsys):
    """--watch: the file already there, a file written in two halves a second apart (read only
    once complete) and one written under a temporary name then renamed are each denoised once,
    in their frame order; a file that never becomes readable is skipped with one line, the watch
    goes on, and --idle-exit ends it (exit 2 because of the skipped file)."""
    import threading

    rng = np.random.default_rng(8)
    watched = tmp_path / "scans"
    watched.mkdir()
    np.save(watched / "a.npy", rng.poisson(4.0, (2, 32, 32)).astype(np.float32))
    cal = tmp_path / "noise.json"  # counts are electrons here: the output mean is checkable
    cal.write_text(json.dumps({"gain_counts_per_e": 1.0, "offset_counts": 0.0}))
    result: dict[str, int] = {}
    worker = threading.Thread(target=lambda: result.update(rc=stem_denoise.main([
        str(run), "--watch", str(watched), "--idle-exit", "3", "-o", str(tmp_path / "o"),
        "--calibration", str(cal)])))
    worker.start()
    try:
        slow = _npy_bytes(rng.poisson(4.0, (3, 32, 32)).astype(np.float32))
        with open(watched / "b.npy", "wb") as f:  # half a file, stable for two polls
            f.write(slow[: len(slow) // 2])
        time.sleep(1.6)
        with open(watched / "b.npy", "ab") as f:
            f.write(slow[len(slow) // 2:])
        (watched / "c.npy.part").write_bytes(_npy_bytes(rng.poisson(4.0, (32, 32))
                                                        .astype(np.float32)))
        os.replace(watched / "c.npy.part", watched / "c.npy")
        (watched / "d.npy").write_bytes(b"not an array")
    finally:
        worker.join(timeout=60)
    assert not worker.is_alive() and result["rc"] == 2
    out = capsys.readouterr()
    summary = json.loads(out.out)
    assert [Path(o["input"]).name for o in summary["outputs"]] == ["a.npy", "b.npy", "c.npy"]
    assert summary["frames"] == 6
    assert len(summary["watch"]["failed"]) == 1 and "d.npy" in summary["watch"]["failed"][0]
    assert "1 watched file(s) could not be used" in out.err
    assert read_raw(tmp_path / "o" / "b.tif").data.shape == (3, 32, 32)
    # what the watch wrote is what stem-denoise writes for the same file given as an input
    assert stem_denoise.main([str(run), str(watched / "b.npy"), "-o", str(tmp_path / "ref"),
                              "--calibration", str(cal)]) == 0
    capsys.readouterr()
    assert np.array_equal(read_raw(tmp_path / "o" / "b.tif").data,
                          read_raw(tmp_path / "ref" / "b.tif").data)


def test_watch_stops_on_ctrl_c_keeping_every_output(run, tmp_path):
    """A real process watching a folder: Ctrl-C (SIGINT) ends the watch with exit 0, the summary
    and every finished output."""
    import signal
    import subprocess
    import sys

    watched = tmp_path / "scans"
    watched.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "apps.stem_denoise", str(run), "--watch", str(watched), "-o",
         str(tmp_path / "o"), "--dose-e-per-px", "4", "--device", "cpu"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        np.save(watched / "live.npy", np.random.default_rng(9).poisson(4.0, (32, 32))
                .astype(np.float32))
        deadline = time.monotonic() + 60
        record = tmp_path / "o" / "stem-denoise.json"  # kept up to date during a watch
        while not record.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        assert [f["input"] for f in json.loads(record.read_text())["files"]] == [
            str(watched / "live.npy")]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["frames"] == 1 and summary["watch"]["failed"] == []
    assert read_raw(tmp_path / "o" / "live.tif").data.shape == (32, 32)


def test_fits_that_pair_frames_take_one_series(run, tmp_path, capsys):
    """--save-calibration and noise2noise pair or pool frames: frames from two microscopes (other
    pixel size) are refused before anything is written; with a stack among the inputs, the fit
    takes that stack's frames only."""
    from mcnn.data.image_io import write_image

    rng = np.random.default_rng(11)
    for name, pm in (("mos2.tif", 12.7), ("sto.tif", 10.0)):
        write_image(tmp_path / name, (500 + 4 * rng.poisson(3 * _ramp(64, 64)))[None, None]
                    .astype(np.float32), PixelSize(pm, pm, "pm"))
    both = [str(tmp_path / "mos2.tif"), str(tmp_path / "sto.tif")]
    o = str(tmp_path / "o")
    assert stem_denoise.main([str(run), *both, "-o", o, "--save-calibration",
                              str(tmp_path / "c.json")]) == 2
    line = _one_error_line(capsys)
    assert "--save-calibration takes frames of one series" in line and "sto.tif" in line
    assert not (tmp_path / "c.json").exists() and not (tmp_path / "o" / "mos2.tif").exists()
    assert stem_denoise.main([str(run), *both, "-o", o, "--adapt-steps", "2", "--adapt-loss",
                              "noise2noise"]) == 2
    assert "--adapt-loss noise2noise takes frames of one series" in _one_error_line(capsys)
    yy, xx = np.mgrid[0:64, 0:64]
    clean = 1 + 0.8 * np.sin(xx / 4.0) * np.cos(yy / 5.0)
    np.save(tmp_path / "series.npy", (500 + 4 * rng.poisson(5.0 * clean, (4, 64, 64)))
            .astype(np.float32))
    assert stem_denoise.main([str(run), both[0], str(tmp_path / "series.npy"), "-o", o,
                              "--save-calibration", str(tmp_path / "c.json")]) == 0
    capsys.readouterr()
    cal = json.loads((tmp_path / "c.json").read_text())
    assert cal["method"] == "frame_pairs" and len(cal["sources"]) == 4
    assert all("series.npy" in src for src in cal["sources"])
    assert cal["gain_counts_per_e"] == pytest.approx(4.0, rel=0.15)


def test_adaptation_options_without_adaptation_are_refused_and_its_record_has_the_loss(
        run, tmp_path, capsys):
    np.save(tmp_path / "f.npy", np.random.default_rng(12).poisson(3.0, (2, 32, 32))
            .astype(np.float32))
    f, o = str(tmp_path / "f.npy"), str(tmp_path / "o")
    for option, value in (("--save-adapted", str(tmp_path / "m.safetensors")),
                          ("--adapt-span", "2")):
        assert stem_denoise.main([str(run), f, "-o", o, option, value]) == 2
        assert f"{option}: only with --adapt-steps N" in _one_error_line(capsys)
    saved = tmp_path / "m.safetensors"
    assert stem_denoise.main([str(run), f, "-o", o, "--dose-e-per-px", "3", "--adapt-steps", "3",
                              "--save-adapted", str(saved)]) == 0
    capsys.readouterr()
    record = json.loads(saved.with_suffix(".adaptation.json").read_text())
    assert record["frames_from"] == [f] and record["loss_first_tenth"] > 0
    assert record["loss_last_tenth"] > 0


def test_watch_denoises_a_series_again_when_it_grows(run, tmp_path, capsys):
    """A series file that gets more frames after it was denoised (TIA writes .ser frame by
    frame) is denoised anew into the same output, not lost and not written twice."""
    import threading

    rng = np.random.default_rng(14)
    watched = tmp_path / "scans"
    watched.mkdir()
    cal = tmp_path / "noise.json"
    cal.write_text(json.dumps({"gain_counts_per_e": 1.0, "offset_counts": 0.0}))
    result: dict[str, int] = {}
    worker = threading.Thread(target=lambda: result.update(rc=stem_denoise.main([
        str(run), "--watch", str(watched), "--idle-exit", "2.5", "-o", str(tmp_path / "o"),
        "--calibration", str(cal)])))
    frames = rng.poisson(4.0, (3, 32, 32)).astype(np.float32)
    (watched / "s.npy").write_bytes(_npy_bytes(frames[:2]))
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "o" / "s.tif").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert read_raw(tmp_path / "o" / "s.tif").data.shape == (2, 32, 32)
        (watched / "s.npy").write_bytes(_npy_bytes(frames))
    finally:
        worker.join(timeout=60)
    assert result["rc"] == 0
    summary = json.loads(capsys.readouterr().out)
    assert [o["output"] for o in summary["outputs"]] == [str(tmp_path / "o" / "s.tif")]
    assert summary["frames"] == 3
    assert read_raw(tmp_path / "o" / "s.tif").data.shape == (3, 32, 32)
    assert sorted(p.name for p in (tmp_path / "o").glob("*.tif")) == ["s.tif"]

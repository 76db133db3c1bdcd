"""mcnn-phase end to end: a series file + physics in, phase TIFF (rad, pixel size) + figure out;
physics mismatches refused in one line; compare and bench write their figure and metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import torch

from apps import phase as app
from mcnn.data.image_io import PixelSize, read_raw, write_image
from mcnn.infer import Predictor
from mcnn.models import MCNN, ModelConfig
from mcnn.physics import DefocusConfig, DefocusSeriesSimulator, ProceduralContent
from mcnn.weights import save_model

PLANES = [-4.0, 0.0, 4.0]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def checkpoint(tmp_path, out_channels: int = 2):
    torch.manual_seed(0)
    model = MCNN(ModelConfig(in_channels=2, out_channels=out_channels, depth=2, base_width=8,
                             max_width=16, branches=1)).eval()
    data = {"kind": "simulated", "simulator": {
        "name": "defocus", "defocus_um": [-4.0, 4.0], "wavelength_um": 0.532,
        "pixel_size_um": 1.0, "predict_amplitude": out_channels == 2}}
    path = tmp_path / "model.safetensors"
    save_model(model, path, training_data=data)
    return path


@pytest.fixture
def series(tmp_path):
    cfg = DefocusConfig(defocus_um=PLANES, phase_max_rad=1.0)
    x, y = DefocusSeriesSimulator(cfg).sample(1, (32, 40), torch.Generator().manual_seed(0),
                                              ProceduralContent())
    path = tmp_path / "series.tif"
    write_image(path, x[0][:, None].numpy(), PixelSize(1.0, 1.0))
    write_image(tmp_path / "truth.tif", y[0].numpy())
    (tmp_path / "m.yaml").write_text(
        "wavelength_um: 0.532\ndefocus_um: [-4, 0, 4]\nground_truth: truth.tif\n")
    return path


def test_predict_writes_phase_and_amplitude_tiffs_with_pixel_size_and_a_png(tmp_path, series,
                                                                            capsys):
    ckpt = checkpoint(tmp_path)
    out = tmp_path / "out"
    rc = app.main(["predict", str(ckpt), str(series), "--manifest", str(tmp_path / "m.yaml"),
                   "-o", str(out), "--device", "cpu"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["defocus_um"] == [-4.0, 4.0]  # the model's planes, picked from three
    phase = read_raw(out / "series_phase.tif")
    assert phase.data.dtype == np.float32 and phase.data.shape == (32, 40)
    assert phase.pixel_size is not None and phase.pixel_size.x == pytest.approx(1.0)
    assert tifffile.imread(out / "series_amplitude.tif").shape == (32, 40)
    assert (out / "series_phase.png").stat().st_size > 1000
    x = tifffile.imread(series)
    x = x / x.mean(axis=(1, 2), keepdims=True)
    expected = Predictor.from_checkpoint(ckpt, device="cpu").predict(x[[0, 2]])[0]
    np.testing.assert_allclose(phase.data, expected - expected.mean(), atol=1e-5)


def test_predict_refuses_other_physics_in_one_line_unless_allowed(tmp_path, series, capsys):
    ckpt = checkpoint(tmp_path)
    args = ["predict", str(ckpt), str(series), "--wavelength-um", "0.633", "--defocus-um",
            "-4", "0", "4", "-o", str(tmp_path / "out"), "--device", "cpu"]
    assert app.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "wavelength_um 0.633 (model 0.532, +19.0%)" in err[0]
    assert app.main([*args, "--allow-mismatch"]) == 0


def test_bad_manifest_field_is_one_line(tmp_path, series, capsys):
    (tmp_path / "bad.yaml").write_text("wavelength: 0.5\n")
    rc = app.main(["compare", str(series), "--manifest", str(tmp_path / "bad.yaml"),
                   "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "bad.yaml: wavelength: unknown field" in err[0]


def test_compare_scores_network_and_baselines_against_the_ground_truth(tmp_path, series, capsys):
    (tmp_path / "run").mkdir()
    ckpt = checkpoint(tmp_path / "run", out_channels=1)
    out = tmp_path / "cmp"
    rc = app.main(["compare", str(series), "--manifest", str(tmp_path / "m.yaml"), "-m",
                   str(ckpt), "--gs-iterations", "3", "-o", str(out), "--device", "cpu"])
    assert rc == 0
    rows = {r["method"]: r for r in json.loads((out / "metrics.json").read_text())["methods"]}
    assert set(rows) == {"zero phase", "MCNN run", "fft_tie", "multiplane_tie",
                         "gs"}
    zero = rows["zero phase"]["phase_rmse_rad"]
    for name in ("fft_tie", "multiplane_tie", "gs"):
        assert rows[name]["phase_rmse_rad"] < 0.3 * zero
    assert rows["MCNN run"]["planes"] == 2
    assert (out / "compare.png").stat().st_size > 5000
    assert "| fft_tie | 3 |" in capsys.readouterr().out


def test_bench_trains_networks_that_beat_zero_phase_and_fft_tie_on_held_out_series(tmp_path,
                                                                                    capsys):
    """The issue's bar at CPU scale: two small MCNNs (with the TIE front) trained here for 400
    steps on procedural content, tested on draws training never saw (~60 s on one thread)."""
    out = tmp_path / "bench"
    sets = ["size=32", "train_steps=400", "depth=3", "base_width=16", "lr=3e-3",
            "test_examples=8", "gs_iterations=2", "device=cpu", "z_um=50",
            "planes_um=[-100,-50,0,50,100]"]
    assert app.main(["bench", "-o", str(out), *sum((["--set", s] for s in sets), [])]) == 0
    report = json.loads((out / "phase_bench.json").read_text())
    nominal = report["nominal"]
    assert set(nominal) == {"zero phase", "MCNN (1)", "MCNN (2)", "FFT-TIE (2)",
                            "multi-plane TIE (5)", "GS (5)"}
    rmse = {k: v["phase_rmse_rad"] for k, v in nominal.items()}
    assert rmse["MCNN (2)"] < 0.9 * rmse["FFT-TIE (2)"]  # measured 0.84x
    assert rmse["MCNN (2)"] < 0.4 * rmse["zero phase"]
    assert rmse["MCNN (1)"] < 0.5 * rmse["zero phase"]
    assert nominal["MCNN (2)"]["phase_ssim"] > nominal["FFT-TIE (2)"]["phase_ssim"]
    assert report["mcnn2_over_fft_tie_rmse"] == pytest.approx(rmse["MCNN (2)"] / rmse["FFT-TIE (2)"])
    assert set(report["mismatched"]) == {"pixel -10%", "pixel +10%", "distances -10%",
                                         "distances +10%"}
    assert (out / "phase_bench.png").is_file()
    assert "| FFT-TIE (2) |" in capsys.readouterr().out


def test_simulate_writes_a_series_that_compare_reads_with_its_truth(tmp_path, capsys):
    out = tmp_path / "sim"
    rc = app.main(["simulate", "-o", str(out), "--size", "24", "32", "--set",
                   "defocus_um=[-3,0,3]", "--set", "phase_max_rad=1"])
    assert rc == 0
    assert app.main(["compare", str(out / "series.tif"), "--manifest", str(out / "series.yaml"),
                     "--methods", "multiplane_tie", "-o", str(tmp_path / "c")]) == 0
    rows = json.loads((tmp_path / "c" / "metrics.json").read_text())["methods"]
    assert rows[1]["phase_rmse_rad"] < 0.3 * rows[0]["phase_rmse_rad"]
    assert app.main(["simulate", "-o", str(out), "--set", "wavelength_nm=500"]) == 2
    assert "wavelength_nm: unknown field" in capsys.readouterr().err

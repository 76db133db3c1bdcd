"""mcnn-bench from the command line: JSON on stdout, files in --out, one-line errors (exit 2)."""

import json

import numpy as np
import pytest
import torch
import yaml

from apps import bench


def test_speed_cli_prints_json_and_writes_out(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"depth": 2, "base_width": 4, "max_width": 8, "branches": 1}))
    out = tmp_path / "speed.json"
    rc = bench.main(["speed", "--config", str(cfg), "--device", "cpu", "--sizes", "16",
                     "--batch-sizes", "1,2", "--dtypes", "fp32", "--modes", "eager",
                     "--repeats", "3", "--warmup", "1", "--threads", "1", "--out", str(out)])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert printed["threads"] == 1 and list(printed["networks"]) == ["tiny"]
    assert [c["batch"] for c in printed["cases"]] == [1, 2]
    assert all(c["fps"] > 0 and c["repeats"] == 3 for c in printed["cases"])
    assert printed["settings"]["repeats"] == 3 and printed["settings"]["warmup"] == 1
    assert "interop_threads" in printed and printed["cpus_available"] >= 1


TINY_FLAGS = ["--steps", "6", "--size", "16", "--depth", "2", "--base-width", "4",
              "--max-width", "8", "--batch-size", "2", "--seeds", "0,1", "--variants",
              "unet,mcnn-equal", "--skips", "add", "--val-every", "3", "--val-examples", "2",
              "--device", "cpu", "--step-time-seconds", "0", "--smooth-points", "1"]


def test_convergence_cli_writes_outputs_and_prints_summary(tmp_path, capsys):
    rc = bench.main(["convergence", "--out", str(tmp_path), *TINY_FLAGS])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["settings"]["steps"] == 6 and summary["settings"]["seeds"] == [0, 1]
    assert summary["settings"]["grad_clip"] is None
    assert set(summary["results"]["add"]) == {"unet", "mcnn-equal"}
    assert summary["results"]["add"]["unet"]["final_mae"]["n"] == 2
    assert {p.name for p in tmp_path.iterdir()} == {"curves.csv", "convergence.png",
                                                   "summary.json"}
    # summarize rebuilds from curves.csv with other levels and smoothing
    assert bench.main(["summarize", str(tmp_path), "--levels", "0.5", "--smooth-points", "3"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert set(again["results"]["add"]["unet"]["reach"]) == {"0.5", "unet_final"}
    assert again["settings"]["smooth_points"] == 3


def test_convergence_takes_a_config_file_flags_and_set_in_that_order(tmp_path, capsys):
    cfg = tmp_path / "bench.yaml"
    cfg.write_text(yaml.safe_dump({"scale": "paper", "steps": 100, "seeds": [1, 2, 3],
                                   "lr": 0.002, "out": "from-file"}))
    rc = bench.main(["convergence", str(cfg), "--steps", "50", "--set", "steps=20",
                     "--set", "skips=[\"concat\"]", "--out", "from-flag", "--print-config"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["steps"] == 20 and printed["skips"] == ["concat"]  # --set wins over the flag
    assert printed["out"] == "from-flag" and printed["lr"] == 0.002 and printed["seeds"] == [1, 2, 3]
    assert (printed["size"], printed["depth"], printed["base_width"]) == (256, 7, 64)  # paper
    assert printed["grad_clip"] is None and printed["smooth_points"] == 5


def test_convergence_print_config_without_a_file_shows_the_cpu_defaults(capsys):
    assert bench.main(["convergence", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["scale"] == "cpu" and printed["size"] == 64 and printed["steps"] == 800
    assert len(printed["seeds"]) >= 5 and printed["grad_clip"] is None


def test_convergence_help_lists_every_field(capsys):
    with pytest.raises(SystemExit):
        bench.main(["convergence", "--help"])
    out = capsys.readouterr().out
    for field in ("scale (one of cpu|paper", "smooth_points", "grad_clip", "seeds", "out"):
        assert field in out


@pytest.mark.parametrize("argv, message", [
    (["convergence", "--out", "x", "--variants", "unet,resnet"], "unknown variants"),
    (["convergence", "--out", "x", "--seeds", "a,b"], "comma-separated integers"),
    (["convergence", "--out", "x", "--skips", "mul"], "skips"),
    (["convergence", "--set", "smooth_points=4"], "smooth_points=4 must be odd"),
    (["convergence", "--set", "bogus=1"], "bogus: unknown field"),
    (["convergence", "--set", "steps"], "expected KEY=VALUE"),
    (["convergence", "missing.yaml"], "no such config file"),
    (["speed", "--repeats", "0"], "--repeats"),
    (["speed", "--preset", "huge"], "unknown model preset"),
    (["speed", "--dtypes", "fp8", "--preset", "small"], "unknown dtype"),
    (["speed", "--config", "missing.yaml"], "no such config file"),
    (["speed", "--seconds", "0"], "--seconds"),
    (["bogus"], "invalid choice"),
])
def test_bad_arguments_are_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        rc = bench.main(argv)
        raise SystemExit(rc)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mcnn-bench: error:") and message in err[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_without_a_gpu_is_a_user_error(capsys):
    assert bench.main(["speed", "--device", "cuda", "--preset", "small"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


@pytest.fixture(scope="module")
def stem_run(tiny_stem_run):
    return tiny_stem_run


def test_stem_cli_prints_json_and_writes_summary_and_figure(stem_run, tmp_path, capsys):
    out = tmp_path / "bench"
    rc = bench.main(["stem", str(stem_run), "--frames", "2", "--size", "48x48", "--snrs", "-5",
                     "--device", "cpu", "--set", "timing_repeats=1",
                     "--set", "simulator.row_offset_e=0.1", "--out", str(out),
                     "--save-frames", str(tmp_path / "frames")])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "summary.json").read_text())
    assert printed["test_simulator"]["row_offset_e"] == 0.1
    assert printed["snrs"][0]["methods"]["mcnn"]["psnr_db"] > 0
    png = (out / "stem-bench.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and printed["figure"].endswith("stem-bench.png")
    # the saved frames are detector counts (offset 500, 8 counts/e) with the pixel size, and
    # stem-denoise with the saved calibration brings them back to the benchmark's model units
    from apps import stem_denoise
    from mcnn.data.image_io import read_raw

    raw = read_raw(tmp_path / "frames" / "raw.tif")
    dose = printed["snrs"][0]["dose_e_per_px"]
    assert raw.pixel_size is not None and raw.pixel_size.to("pm").y == pytest.approx(20.0)
    electrons = (raw.data.astype(np.float64) - 500.0) / 8.0
    assert electrons.min() > -1.0 and abs(electrons.mean() - dose) < 0.3 * dose
    assert stem_denoise.main([str(stem_run), str(tmp_path / "frames" / "raw.tif"), "-o",
                              str(tmp_path / "den"), "--calibration",
                              str(tmp_path / "frames" / "calibration.json"), "--device", "cpu"]
                             ) == 0
    assert (tmp_path / "den" / "raw.tif").is_file()


def test_stem_cli_user_errors_are_one_line_exit_2(stem_run, tmp_path, capsys):
    from mcnn.models import MCNN, ModelConfig
    from mcnn.weights import save_model

    assert bench.main(["stem", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such checkpoint" in err[0]
    other = tmp_path / "other.safetensors"
    save_model(MCNN(ModelConfig(depth=2, base_width=4, max_width=8, branches=1)), other)
    assert bench.main(["stem", str(other), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a STEM model" in err[0]
    assert bench.main(["stem", str(stem_run), "--set", "simulator.bogus=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bogus: unknown field" in err[0]


def test_denoiser_vs_unet_cli_writes_json_and_refuses_a_missing_config(tmp_path, capsys):
    out = tmp_path / "r.json"
    argv = ["denoiser-vs-unet", "--width-scale", "0.125", "--sizes", "16", "--seconds", "0.05",
            "--train-steps", "1", "--train-size", "16", "--val-examples", "1", "--batch-size",
            "1", "--out", str(out)]
    assert bench.main(argv) == 0
    report = json.loads(out.read_text())
    assert report["parameter_mismatch"] <= 0.05
    assert report["speed"]["16"]["speed_ratio"] > 0
    capsys.readouterr()
    assert bench.main([*argv, "--config", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.yaml" in err[0]


def test_negative_snr_lists_parse_without_an_equals_sign(stem_run, capsys):
    """``--snrs -5,-10`` (argparse alone reads '-5,-10' as an option and exits 2)."""
    from apps.cli import attach_negative_values

    assert attach_negative_values(["stem", "x", "--snrs", "-5,-10", "--seed", "3"], ("--snrs",)) \
        == ["stem", "x", "--snrs=-5,-10", "--seed", "3"]
    assert attach_negative_values(["--snrs", "--seed"], ("--snrs",)) == ["--snrs", "--seed"]
    assert attach_negative_values(["--snrs", "-.5"], ("--snrs",)) == ["--snrs=-.5"]
    assert attach_negative_values(["--dose", "-inf"], ("--dose",)) == ["--dose=-inf"]
    assert attach_negative_values(["--dose", "-input"], ("--dose",)) == ["--dose", "-input"]
    assert bench.main(["stem", str(stem_run), "--snrs", "-5,-10", "--print-config"]) == 0
    assert "-10.0" in capsys.readouterr().out

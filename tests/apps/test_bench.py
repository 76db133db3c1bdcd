"""mcnn-bench from the command line: JSON on stdout, files in --out, one-line errors (exit 2)."""

import json

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
                     "--seconds", "0.02", "--threads", "1", "--out", str(out)])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert printed["threads"] == 1 and list(printed["networks"]) == ["tiny"]
    assert [c["batch"] for c in printed["cases"]] == [1, 2]
    assert all(c["fps"] > 0 for c in printed["cases"])


def test_convergence_cli_writes_outputs_and_prints_summary(tmp_path, capsys):
    rc = bench.main(["convergence", "--out", str(tmp_path), "--steps", "6", "--size", "16",
                     "--depth", "2", "--base-width", "4", "--max-width", "8", "--batch-size", "2",
                     "--seeds", "0", "--variants", "unet,mcnn-equal", "--skips", "add",
                     "--val-every", "3", "--val-examples", "2", "--device", "cpu",
                     "--step-time-seconds", "0"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["settings"]["steps"] == 6
    assert set(summary["results"]["add"]) == {"unet", "mcnn-equal"}
    assert {p.name for p in tmp_path.iterdir()} == {"curves.csv", "convergence.png",
                                                   "summary.json"}


@pytest.mark.parametrize("argv, message", [
    (["convergence", "--out", "x", "--variants", "unet,resnet"], "unknown variants"),
    (["convergence", "--out", "x", "--seeds", "a,b"], "comma-separated integers"),
    (["convergence", "--out", "x", "--skips", "mul"], "skips"),
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

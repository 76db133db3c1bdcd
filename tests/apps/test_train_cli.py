"""mcnn-train and mcnn-demo from the command line: results, help, and one-line user errors."""

import json

import yaml

from apps import demo, train


def _write(tmp_path, cfg: dict):
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _tiny(tmp_path):
    return {
        "name": "cli", "out_dir": str(tmp_path / "runs"),
        "model": {"depth": 2, "base_width": 4, "max_width": 8, "branches": 1},
        "data": {"kind": "simulated", "simulator": {"name": "laplacian"}, "size": 16,
                 "examples_per_epoch": 8, "val_examples": 4},
        "train": {"steps": 4, "batch_size": 2, "val_every": 2, "tensorboard": False},
    }


def test_train_cli_runs_with_overrides_and_prints_metrics(tmp_path, capsys):
    cfg = _write(tmp_path, _tiny(tmp_path))
    assert train.main([str(cfg), "--steps", "3", "--set", "model.branches=0", "--name", "x"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["step"] == 3 and out["val_mae"] > 0
    saved = json.loads((tmp_path / "runs" / "x" / "config.json").read_text())
    assert saved["model"]["branches"] == 0 and saved["train"]["steps"] == 3
    # resume a finished run with more steps
    assert train.main([str(cfg), "--name", "x", "--steps", "5", "--set", "model.branches=0",
                       "--resume"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 5


def test_train_cli_user_errors_are_one_line_exit_2(tmp_path, capsys):
    bad = _tiny(tmp_path)
    bad["model"]["depht"] = 3
    assert train.main([str(_write(tmp_path, bad))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"mcnn-train: error: {tmp_path / 'cfg.yaml'}: model.depht: unknown field"]
    assert train.main([str(tmp_path / "missing.yaml")]) == 2
    assert "no such config file" in capsys.readouterr().err
    assert train.main([str(_write(tmp_path, _tiny(tmp_path))), "--set", "nonsense"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_print_config_and_help_document_fields(tmp_path, capsys):
    assert train.main([str(_write(tmp_path, _tiny(tmp_path))), "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["depth"] == 2
    help_text = train.build_parser().format_help()
    for field in ("model.branches", "loss.branch_schedule", "optim.lr", "train.steps", "torchrun"):
        assert field in help_text


def test_demo_writes_picture_and_metrics(tmp_path, capsys):
    assert demo.main(["--steps", "4", "--size", "32", "--out", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["steps"] == 4 and 0 < out["val_mae"] < 10
    from PIL import Image

    img = Image.open(out["picture"])
    assert img.size[0] > 500 and img.size[1] > 300


def test_data_that_does_not_fit_the_model_is_a_one_line_error(tmp_path, capsys):
    cfg = _tiny(tmp_path)
    cfg["model"]["in_channels"] = 3
    assert train.main([str(_write(tmp_path, cfg))]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "mcnn-train: error: model.in_channels=3 but the data inputs have 1"
    ]


def _err_lines(capsys):
    return capsys.readouterr().err.strip().splitlines()


def test_run_folder_resume_and_device_mistakes_are_one_line_exit_2(tmp_path, capsys):
    import torch

    cfg = _write(tmp_path, _tiny(tmp_path))
    run = tmp_path / "runs" / "cli"
    assert train.main([str(cfg), "--steps", "2"]) == 0
    capsys.readouterr()
    assert train.main([str(cfg), "--steps", "2"]) == 2
    err = _err_lines(capsys)
    assert err == [f"mcnn-train: error: {run}: holds a run already; pass --resume to continue it, "
                   "--overwrite to replace it, or choose another name/out_dir"]
    assert train.main([str(cfg), "--steps", "2", "--overwrite"]) == 0
    capsys.readouterr()
    assert train.main([str(cfg), "--steps", "3", "--lr", "0.01", "--resume"]) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and "config differs from the saved run in optim.lr (0.001 -> 0.01)" in err[0]
    assert train.main([str(cfg), "--name", "fresh", "--resume"]) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and "no checkpoint to resume from" in err[0]
    assert train.main([str(cfg), "--name", "dev", "--set", "train.device=tpu"]) == 2
    assert len(_err_lines(capsys)) == 1
    if not torch.cuda.is_available():
        assert train.main([str(cfg), "--name", "dev", "--device", "cuda"]) == 2
        assert _err_lines(capsys) == [
            "mcnn-train: error: device='cuda' but no CUDA device is available"]


def test_sigterm_stops_with_exit_130_and_resume_finishes(tmp_path, capsys, monkeypatch):
    import os
    import signal

    from mcnn.train.trainer import Trainer

    def stop_at_2(self, step, logs):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    cfg = _write(tmp_path, _tiny(tmp_path))
    with monkeypatch.context() as m:
        m.setattr(Trainer, "on_step_end", stop_at_2)
        assert train.main([str(cfg)]) == 130
    state = json.loads((tmp_path / "runs" / "cli" / "checkpoints" / "last" /
                        "training_state.json").read_text())
    assert state["state"]["step"] == 2
    capsys.readouterr()
    assert train.main([str(cfg), "--resume"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 4

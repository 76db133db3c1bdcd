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


def _tiny_stem(tmp_path):
    cfg = _tiny(tmp_path)
    cfg["data"] = {"kind": "simulated", "size": 32, "examples_per_epoch": 4, "val_examples": 2,
                   "simulator": {"name": "stem", "pixel_size_pm": 20.0,
                                 "spacing_pm_range": [160.0, 300.0],
                                 "atom_sigma_pm_range": [20.0, 40.0]}}
    return cfg


def test_train_for_a_users_microscope_from_a_file_and_a_calibration(tmp_path, capsys):
    """--pixel-size-from takes the pixel size a microscope file records, --calibration the
    detector's read noise in electrons; they train, and the run's config records them."""
    import numpy as np

    from mcnn.data.image_io import PixelSize, write_image

    write_image(tmp_path / "scan.tif", np.ones((1, 1, 32, 32), np.float32),
                PixelSize(0.0125, 0.0125, "nm"))
    (tmp_path / "noise.json").write_text(json.dumps(
        {"gain_counts_per_e": 8.0, "offset_counts": 100.0, "read_noise_counts": 2.0}))
    cfg = _write(tmp_path, _tiny_stem(tmp_path))
    assert train.main([str(cfg), "--pixel-size-from", str(tmp_path / "scan.tif"), "--calibration",
                       str(tmp_path / "noise.json"), "--steps", "2", "--name", "mine"]) == 0
    capsys.readouterr()
    saved = json.loads((tmp_path / "runs" / "mine" / "config.json").read_text())["data"]
    assert saved["simulator"]["pixel_size_pm"] == 12.5
    assert saved["simulator"]["detector_noise_e"] == 0.25  # 2 counts / 8 counts per electron
    # --pixel-size in any length unit; --set still has the last word
    assert train.main([str(cfg), "--pixel-size", "0.15A", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["data"]["simulator"]["pixel_size_pm"] == 15.0
    assert train.main([str(cfg), "--pixel-size", "15pm", "--set",
                       "data.simulator.pixel_size_pm=18", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["data"]["simulator"]["pixel_size_pm"] == 18.0


def test_stem_training_options_refused_where_they_would_change_nothing(tmp_path, capsys):
    import numpy as np

    assert train.main([str(_write(tmp_path, _tiny(tmp_path))), "--pixel-size", "10pm"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--pixel-size: only for the STEM simulator" in err[0]
    assert train.main([str(_write(tmp_path, _tiny_stem(tmp_path))), "--pixel-size", "-5pm"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--pixel-size -5pm: '-5pm': a length must be > 0" in err[0]
    px_only = _tiny_stem(tmp_path)
    for key in ("pixel_size_pm", "spacing_pm_range", "atom_sigma_pm_range"):
        del px_only["data"]["simulator"][key]
    assert train.main([str(_write(tmp_path, px_only)), "--pixel-size", "10pm"]) == 2
    assert "gives the column spacing and width in pixels" in capsys.readouterr().err
    np.save(tmp_path / "bare.npy", np.ones((32, 32), np.float32))
    assert train.main([str(_write(tmp_path, _tiny_stem(tmp_path))), "--pixel-size-from",
                       str(tmp_path / "bare.npy")]) == 2
    assert "bare.npy: --pixel-size-from needs a file that records its pixel size" in \
        capsys.readouterr().err
    # a calibration fitted without a dark frame assumed the read noise: nothing to train on
    (tmp_path / "fitted.json").write_text(json.dumps(
        {"gain_counts_per_e": 8.0, "offset_counts": 100.0, "read_noise_counts": 0.0,
         "method": "single_frame", "offset_from": "intercept"}))
    assert train.main([str(_write(tmp_path, _tiny_stem(tmp_path))), "--calibration",
                       str(tmp_path / "fitted.json")]) == 2
    assert "fitted.json: its read noise was not measured" in capsys.readouterr().err

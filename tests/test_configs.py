"""Every config shipped in configs/ validates, builds its network and trains.

Training configs train for 2 steps at a tiny data size with their own network, loss and optimiser
(the shipped STEM config once stopped at step 1 with "7 outputs but 8 weights"); the model files in
configs/bench/ train inside a tiny Laplacian run, and the convergence-benchmark settings there run
at a micro size. The hidden-screen recording config trains on a
short recording made here with the simulated rig. A fine-tuning config (``train.init_weights``)
starts from a tiny run of its own network trained first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mcnn.config_io import load_config, read_mapping
from mcnn.models import MCNN, ModelConfig, count_parameters
from mcnn.train.config import TrainConfig

ROOT = Path(__file__).parents[1]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
TRAIN_CONFIGS = [p for p in CONFIGS if "model" in read_mapping(p)]
BENCH_RUN_CONFIGS = [p for p in CONFIGS if "variants" in read_mapping(p)]
MODEL_CONFIGS = [p for p in CONFIGS if p not in TRAIN_CONFIGS and p not in BENCH_RUN_CONFIGS]


def test_there_are_example_configs():
    assert len(TRAIN_CONFIGS) >= 5 and len(MODEL_CONFIGS) >= 2 and len(BENCH_RUN_CONFIGS) >= 2


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: p.name)
def test_example_config_validates_and_builds(path):
    cfg = load_config(TrainConfig, path)
    n = count_parameters(MCNN(cfg.model))
    assert n > 1e5
    if path.name == "denoise-stem.yaml":
        assert 38e6 < n < 50e6  # the paper's denoiser size


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    from apps import acquire_pairs

    out = tmp_path_factory.mktemp("rec")
    rc = acquire_pairs.main([
        "record", "--mode", "passive", "--camera", "sim:size=160x90", "--screen",
        "virtual:320x180", "--pairs", "12", "--rate", "30", "--out", str(out), "--name", "r",
    ])
    assert rc == 0
    return out / "r"


def _tiny_overrides(cfg: TrainConfig, tmp_path: Path) -> dict:
    overrides = {
        "out_dir": str(tmp_path), "train.steps": 2, "train.batch_size": 2, "train.val_every": 2,
        "train.val_batch_size": 2, "train.checkpoint_every": 2, "train.tensorboard": False,
        "train.sample_images": 1, "train.device": "cpu", "optim.warmup_steps": 0,
    }
    if cfg.data.kind == "simulated":
        overrides.update({"data.size": [24, 40], "data.examples_per_epoch": 4,
                          "data.val_examples": 2})
    return overrides


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: p.name)
def test_every_training_config_trains(path, tmp_path, request):
    from mcnn.train.trainer import Trainer

    cfg = load_config(TrainConfig, path)
    overrides = _tiny_overrides(cfg, tmp_path)
    if cfg.data.kind == "pairs":
        recording = request.getfixturevalue("recording")
        h, w = 16, 32
        overrides.update({"data.path": str(recording), "data.test_first": 4,
                          "data.camera_size": [h, w],
                          "data.screen_size": [h * cfg.model.output_scale,
                                               w * cfg.model.output_scale]})
    if cfg.train.init_weights is not None:
        # A fine-tuning stage starts from an earlier run, which does not exist here: train the
        # same network tiny first and start from that.
        source = load_config(TrainConfig, path, {**overrides, "name": f"{cfg.name}-init",
                                                 "train.init_weights": None})
        Trainer(source, progress=False).fit()
        overrides["train.init_weights"] = str(source.run_dir / "checkpoints" / "last")
    cfg = load_config(TrainConfig, path, overrides)
    metrics = Trainer(cfg, progress=False).fit()
    assert cfg.model.branches >= 1
    assert 0 <= metrics["val_mae"] < float("inf")
    assert (tmp_path / cfg.name / "checkpoints" / "last").exists()


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=lambda p: p.name)
def test_every_model_config_trains(path, tmp_path):
    from mcnn.train.trainer import Trainer

    model = load_config(ModelConfig, path)
    cfg = TrainConfig.model_validate({
        "name": path.stem, "out_dir": str(tmp_path), "model": model.model_dump(),
        "data": {"kind": "simulated", "simulator": {"name": "laplacian"}, "size": 24,
                 "examples_per_epoch": 4, "val_examples": 2},
        "train": {"steps": 2, "batch_size": 2, "val_every": 2, "val_batch_size": 2,
                  "tensorboard": False, "sample_images": 1, "device": "cpu"},
    })
    metrics = Trainer(cfg, progress=False).fit()
    assert metrics["val_mae"] < float("inf")


@pytest.mark.parametrize("path", BENCH_RUN_CONFIGS, ids=lambda p: p.name)
def test_every_convergence_config_runs(path, tmp_path):
    from mcnn.bench.convergence import ConvergenceSettings, run_convergence

    s = load_config(ConvergenceSettings, path, {
        "size": 16, "depth": 2, "base_width": 4, "max_width": 8, "batch_size": 2, "steps": 4,
        "val_every": 2, "val_examples": 2, "examples_per_epoch": 4, "seeds": [0],
        "device": "cpu", "step_time_seconds": 0, "out": str(tmp_path), "checkpoints": [2]})
    assert run_convergence(s)["results"]

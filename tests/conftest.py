"""Shared fixtures."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def xvfb_display() -> Iterator[str]:
    """A private 1920x1080 Xvfb display (``":N"``) for tests that need real X11 (mss, Qt xcb).

    Skips when Xvfb is not installed, except in CI (``CI`` set), where that is a failure.
    """
    if shutil.which("Xvfb") is None:
        if os.environ.get("CI"):
            pytest.fail("Xvfb is required in CI (apt-get install xvfb)")
        pytest.skip("Xvfb not installed")
    from acquire.xvfb import Xvfb, x11_environment

    with Xvfb((1920, 1080)) as server, x11_environment(server.display):
        yield server.display


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread for the test: tiny convolutions only contend on more (and run many
    times slower when other jobs share the CPU). Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_stem_run(tmp_path_factory) -> Path:
    """A tiny STEM denoiser from the shipped CPU config, 3 steps on 32^2 frames, trained once for
    the session (stem-denoise, the STEM benchmark and its CLI tests share it)."""
    import torch

    from mcnn.config_io import load_config
    from mcnn.train.config import TrainConfig
    from mcnn.train.trainer import Trainer

    out = tmp_path_factory.mktemp("stem-runs")
    cfg = load_config(TrainConfig, Path(__file__).parents[1] / "configs" / "denoise-stem-cpu.yaml", {
        "out_dir": str(out), "name": "tiny", "model.depth": 2, "model.base_width": 8,
        "model.max_width": 16, "model.branches": 2, "data.size": [32, 32],
        "data.examples_per_epoch": 8, "data.val_examples": 2, "train.steps": 3,
        "train.batch_size": 2, "train.val_every": 3, "train.val_batch_size": 2,
        "train.checkpoint_every": 3, "train.tensorboard": False, "train.sample_images": 1,
        "train.device": "cpu", "optim.warmup_steps": 0,
    })
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(cfg, progress=False).fit()
    finally:
        torch.set_num_threads(threads)
    return out / "tiny"

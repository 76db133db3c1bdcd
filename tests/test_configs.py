"""Every example config shipped in configs/ validates and builds its network."""

from pathlib import Path

import pytest

from mcnn.config_io import load_config
from mcnn.models import MCNN, count_parameters
from mcnn.train.config import TrainConfig

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def test_there_are_example_configs():
    assert len(CONFIGS) >= 5


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_validates_and_builds(path):
    cfg = load_config(TrainConfig, path)
    n = count_parameters(MCNN(cfg.model))
    assert n > 1e5
    if path.name == "denoise-stem.yaml":
        assert 38e6 < n < 50e6  # the paper's denoiser size

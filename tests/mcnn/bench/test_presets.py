"""The speed presets have the sizes they promise, and the config files match them."""

from pathlib import Path

import pytest

from mcnn.bench.presets import MODEL_PRESETS, load_model_config, model_preset
from mcnn.models import MCNN, count_parameters

ROOT = Path(__file__).resolve().parents[3]


def test_denoiser_is_the_papers_39m_parameter_network_and_small_is_about_3m():
    assert 38e6 < count_parameters(MCNN(model_preset("denoiser"))) < 40e6
    assert 2.5e6 < count_parameters(MCNN(model_preset("small"))) < 3.5e6


@pytest.mark.parametrize("name", sorted(MODEL_PRESETS))
def test_config_file_equals_preset(name):
    assert load_model_config(ROOT / "configs" / "bench" / f"{name}.yaml") == MODEL_PRESETS[name]


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="denoiser"):
        model_preset("huge")


@pytest.mark.parametrize("name", ["convergence-cpu", "convergence-paper"])
def test_convergence_config_files_validate_with_five_seeds_and_no_clipping(name):
    from mcnn.bench.convergence import ConvergenceSettings
    from mcnn.config_io import load_config

    s = load_config(ConvergenceSettings, ROOT / "configs" / "bench" / f"{name}.yaml")
    assert s.scale == name.split("-")[1] and len(s.seeds) == 5 and s.grad_clip is None

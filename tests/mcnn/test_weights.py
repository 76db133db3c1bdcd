"""Model files: loadable without the trainer, and checked against their config before weights load."""

import json
import subprocess
import sys

import pytest
import torch

from mcnn.models import MCNN, ModelConfig
from mcnn.weights import MODEL_CONFIG_KEY, CheckpointError, load_model, save_model


def _model(**kw):
    torch.manual_seed(0)
    return MCNN(ModelConfig(depth=2, base_width=4, max_width=8, branches=1, **kw))


def _save_raw(path, tensors, config_json):
    from safetensors.torch import save_file

    save_file(tensors, str(path), {MODEL_CONFIG_KEY: config_json})


def test_weights_and_device_import_without_training_data_or_losses():
    code = (
        "import sys, mcnn.weights, mcnn.device; "
        "bad = [m for m in sys.modules if m.split('.')[:2] in (['mcnn', 'train'], ['mcnn', 'data'],"
        " ['mcnn', 'losses'], ['mcnn', 'physics']) or m == 'safetensors']; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_round_trip_is_exact(tmp_path):
    m = _model()
    save_model(m, tmp_path / "model.safetensors")
    loaded, config = load_model(tmp_path)
    x = torch.randn(1, 1, 12, 12)
    assert config == m.config and torch.equal(loaded(x), m.eval()(x))


def test_shapes_that_do_not_fit_the_stored_config_name_the_first_tensor(tmp_path, monkeypatch):
    m = _model()
    wider = ModelConfig(depth=2, base_width=6, max_width=8, branches=1)  # tampered metadata
    path = tmp_path / "model.safetensors"
    _save_raw(path, dict(m.state_dict()), wider.model_dump_json())
    import safetensors.torch

    def no_weights(*a, **k):  # the check must come from the header alone
        raise AssertionError("weights were read before the check")

    monkeypatch.setattr(safetensors.torch, "load_file", no_weights)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    msg = str(info.value)
    assert msg == (f"{path}: tensor stem.0.weight has shape [4, 1, 3, 3] but the stored config "
                   "gives [6, 1, 3, 3]")


def test_missing_and_extra_tensors_are_named(tmp_path):
    m = _model()
    state = dict(m.state_dict())
    dropped = list(state)[-1]
    path = tmp_path / "missing.safetensors"
    _save_raw(path, {k: v for k, v in state.items() if k != dropped}, m.config.model_dump_json())
    with pytest.raises(CheckpointError, match=f"tensor {dropped} is missing"):
        load_model(path)
    path = tmp_path / "extra.safetensors"
    _save_raw(path, {**state, "evil.weight": torch.zeros(2)}, m.config.model_dump_json())
    with pytest.raises(CheckpointError, match="tensor evil.weight is not part of"):
        load_model(path)


def test_invalid_config_metadata_is_one_line(tmp_path):
    m = _model()
    cfg = json.loads(m.config.model_dump_json())
    cfg["depth"] = -3
    path = tmp_path / "model.safetensors"
    _save_raw(path, dict(m.state_dict()), json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"not a valid model config \(depth:") as info:
        load_model(path)
    assert "\n" not in str(info.value)


def test_a_trained_checkpoint_carries_its_training_data_config(tmp_path):
    """A model file says how its inputs were made (simulator, units, physics) for use on new data."""
    from mcnn.infer import Predictor
    from mcnn.train.config import TrainConfig
    from mcnn.train.trainer import Trainer
    from mcnn.weights import read_training_data

    cfg = TrainConfig.model_validate({
        "name": "t", "out_dir": str(tmp_path),
        "model": {"depth": 2, "base_width": 4, "branches": 1, "in_channels": 2},
        "data": {"kind": "simulated", "size": 16, "examples_per_epoch": 4, "val_examples": 2,
                 "simulator": {"name": "defocus", "defocus_um": [-20.0, 20.0],
                               "wavelength_um": 0.633, "pixel_size_um": 2.0}},
        "train": {"steps": 2, "batch_size": 2, "val_every": 2, "tensorboard": False,
                  "sample_images": 0, "device": "cpu"},
    })
    Trainer(cfg, progress=False).fit()
    data = read_training_data(tmp_path / "t")
    assert data is not None and data["simulator"]["wavelength_um"] == 0.633
    assert data["simulator"]["pixel_size_um"] == 2.0
    p = Predictor.from_checkpoint(tmp_path / "t", device="cpu")
    assert p.training_data == data

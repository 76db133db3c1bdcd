"""Checkpoints: safetensors + JSON only, self-contained model files, crash-safe swaps, exact state."""

import json

import pytest
import torch

from mcnn.models import MCNN, ModelConfig
from mcnn.train import checkpoint as ckpt


def _model():
    torch.manual_seed(0)
    return MCNN(ModelConfig(depth=2, base_width=4, max_width=8, branches=1))


def test_model_file_is_safetensors_with_config_metadata(tmp_path):
    m = _model()
    ckpt.save_model(m, tmp_path / "model.safetensors")
    raw = (tmp_path / "model.safetensors").read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    cfg = json.loads(header["__metadata__"][ckpt.MODEL_CONFIG_KEY])
    assert cfg["depth"] == 2 and cfg["base_width"] == 4
    loaded, config = ckpt.load_model(tmp_path / "model.safetensors")
    x = torch.randn(1, 1, 12, 12)
    assert torch.equal(loaded(x), m.eval()(x))
    assert config == m.config


def test_full_checkpoint_round_trip_restores_optimizer_scheduler_and_rng(tmp_path):
    m = _model()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    sch = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5**s)
    for _ in range(3):
        opt.zero_grad()
        m(torch.randn(2, 1, 8, 8)).pow(2).mean().backward()
        opt.step()
        sch.step()
    torch.manual_seed(123)
    ckpt.save_checkpoint(tmp_path / "last", model=m, config_json="{}", optimizers={"model": opt},
                         schedulers={"model": sch}, extra_modules={}, state={"step": 3})
    expected_next = torch.rand(3)

    m2 = MCNN(m.config)
    opt2 = torch.optim.Adam(m2.parameters(), lr=1e-2)
    sch2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda s: 0.5**s)
    state = ckpt.load_checkpoint(tmp_path / "last", model=m2, optimizers={"model": opt2},
                                 schedulers={"model": sch2}, extra_modules={})
    assert state == {"step": 3}
    assert torch.equal(torch.rand(3), expected_next)  # RNG restored
    assert sch2.last_epoch == 3 and opt2.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.125)
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert s1.keys() == s2.keys()
    for k in s1:
        assert torch.equal(s1[k]["exp_avg"], s2[k]["exp_avg"])
        assert float(s1[k]["step"]) == float(s2[k]["step"])
    assert not list(tmp_path.glob("*.pkl")) and not list(tmp_path.rglob("*.pt"))


def test_interrupted_swap_falls_back_to_the_previous_checkpoint(tmp_path):
    m = _model()
    opt = torch.optim.Adam(m.parameters())
    kw = dict(model=m, config_json="{}", optimizers={"model": opt}, schedulers={}, extra_modules={})
    ckpt.save_checkpoint(tmp_path / "last", state={"step": 1}, **kw)
    (tmp_path / "last").rename(tmp_path / "last.old")  # crash between the two renames
    (tmp_path / "last.tmp").mkdir()  # and a half-written new one
    assert ckpt.resolve_checkpoint(tmp_path / "last") == tmp_path / "last.old"
    state = ckpt.load_checkpoint(tmp_path / "last", model=m, optimizers={"model": opt},
                                 schedulers={}, extra_modules={})
    assert state["step"] == 1


@pytest.mark.parametrize("name, content, fragment", [
    ("missing.safetensors", None, "no such checkpoint"),
    ("x.safetensors", b"garbage", "not a readable"),
    ("", None, "no model.safetensors"),
    ("w.pt", b"", "expected a .safetensors"),
])
def test_bad_checkpoint_paths_give_one_line_errors(tmp_path, name, content, fragment):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ckpt.CheckpointError, match=fragment) as info:
        ckpt.load_model(path)
    assert "\n" not in str(info.value)

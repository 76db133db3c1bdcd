"""Checkpoints: safetensors + JSON only, self-contained model files, crash-safe swaps, exact state."""

import contextlib
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


CRASH_POINTS = ["folder", "model", "config", "state_tensors", "state_json", "manifest",
                "pointer", "delete"]
COMMITTED = {"pointer", "delete", None}  # a save killed at these points has repointed the name


class Killed(BaseException):
    """A kill: not an Exception, so no handler in the save path can swallow it."""


def _saver(tmp_path, monkeypatch):
    """``save(step, kill_at=None)``: a checkpoint whose weights encode ``step``, optionally killed
    at the first time the save reaches ``kill_at``."""
    m = _model()
    opt = torch.optim.Adam(m.parameters())
    kill = {"at": None}

    def crash_point(where: str) -> None:
        if where == kill["at"]:
            raise Killed(where)

    monkeypatch.setattr(ckpt, "_crash_point", crash_point)

    def save(step: int, kill_at: str | None = None) -> None:
        with torch.no_grad():
            for p in m.parameters():
                p.fill_(float(step))
        kill["at"] = kill_at
        with contextlib.suppress(Killed):
            ckpt.save_checkpoint(tmp_path / "last", model=m, config_json="{}",
                                 optimizers={"model": opt}, schedulers={}, extra_modules={},
                                 state={"step": step})
        kill["at"] = None

    return m, opt, save


def _load(tmp_path, m, opt) -> int:
    state = ckpt.load_checkpoint(tmp_path / "last", model=m, optimizers={"model": opt},
                                 schedulers={}, extra_modules={})
    assert all(torch.all(p == state["step"]) for p in m.parameters())  # the weights of that save
    return state["step"]


@pytest.mark.parametrize("first", CRASH_POINTS)
def test_two_kills_in_a_row_at_any_step_of_a_save_keep_a_complete_checkpoint(
        tmp_path, monkeypatch, first):
    """Save 1 completes; save 2 is killed at ``first``; save 3 at every point in turn: the name
    always resolves to the newest committed save, with exactly its weights."""
    for second in CRASH_POINTS:
        run = tmp_path / second
        m, opt, save = _saver(run, monkeypatch)
        save(1)
        save(2, kill_at=first)
        save(3, kill_at=second)
        committed = [s for s, at in ((1, None), (2, first), (3, second)) if at in COMMITTED]
        assert _load(run, m, opt) == committed[-1], (first, second)
        save(4)  # and the run goes on: one complete version left, the name pointing at it
        assert _load(run, m, opt) == 4
        assert [p.name for p in ckpt._versions(run / "last")] == ["last-000004"]


def test_a_version_whose_file_no_longer_matches_its_manifest_is_skipped(tmp_path, monkeypatch):
    m, opt, save = _saver(tmp_path, monkeypatch)
    save(1)
    save(2, kill_at="manifest")  # complete, but the name still points at version 1
    target = (tmp_path / "last").resolve()
    data = bytearray((target / ckpt.STATE_TENSORS).read_bytes())
    data[-1] ^= 0xFF  # one flipped byte: same size, other hash
    (target / ckpt.STATE_TENSORS).write_bytes(bytes(data))
    assert _load(tmp_path, m, opt) == 2  # the pointed-at version fails its check: next newest


def test_a_folder_of_the_old_layout_resumes_and_is_kept_as_version_0(tmp_path, monkeypatch):
    m, opt, save = _saver(tmp_path, monkeypatch)
    save(1)
    legacy = (tmp_path / "last").resolve()
    (tmp_path / "last").unlink()
    legacy.rename(tmp_path / "last")  # a plain folder, as written before versioning
    (tmp_path / "last" / ckpt.MANIFEST).unlink()
    assert _load(tmp_path, m, opt) == 1
    save(2)
    assert _load(tmp_path, m, opt) == 2 and (tmp_path / "last").is_symlink()


def test_sigkill_while_saving_over_and_over_twice_in_a_row_keeps_a_checkpoint(tmp_path):
    """Real kills at arbitrary moments (two processes in a row), not only injected ones."""
    import signal
    import subprocess
    import sys
    import time

    code = (
        "import sys, torch\n"
        "from mcnn.models import MCNN, ModelConfig\n"
        "from mcnn.train import checkpoint as ckpt\n"
        "m = MCNN(ModelConfig(depth=3, base_width=16, max_width=64, branches=1))\n"
        "opt = torch.optim.Adam(m.parameters())\n"
        "step = int(sys.argv[2])\n"
        "while True:\n"
        "    step += 1\n"
        "    ckpt.save_checkpoint(sys.argv[1], model=m, config_json='{}', optimizers={'model': opt},"
        " schedulers={}, extra_modules={}, state={'step': step})\n"
        "    print(step, flush=True)\n"
    )
    folder = tmp_path / "last"
    for start, delay in ((0, 0.5), (1000, 0.7)):
        proc = subprocess.Popen([sys.executable, "-c", code, str(folder), str(start)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        proc.stdout.readline()  # one save done (importing torch can take seconds on a busy machine)
        time.sleep(delay)  # then kill it somewhere inside a later save
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    found = ckpt.resolve_checkpoint(folder, verify_hashes=True)
    assert found is not None
    m = MCNN(ModelConfig(depth=3, base_width=16, max_width=64, branches=1))
    state = ckpt.load_checkpoint(folder, model=m, optimizers={}, schedulers={}, extra_modules={})
    assert state["step"] >= 1


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

"""Stopping and resuming: a stop at any point inside a step resumes bit for bit, a changed config
is refused, an extended run keeps its learning-rate schedule, and logs are not duplicated."""

import csv
import json
import os
import signal

import pytest
import torch

from mcnn.train.config import TrainConfig
from mcnn.train.errors import TrainingError
from mcnn.train.lr_schedule import lr_factor
from mcnn.train.trainer import Trainer


def micro(out_dir, name="run", **over) -> TrainConfig:
    base = {
        "name": name, "out_dir": str(out_dir),
        "model": {"depth": 2, "base_width": 4, "max_width": 8, "branches": 1},
        "data": {"kind": "simulated", "simulator": {"name": "laplacian"}, "size": 16,
                 "examples_per_epoch": 12, "val_examples": 4},
        "train": {"steps": 8, "batch_size": 2, "val_every": 4, "checkpoint_every": 3,
                  "tensorboard": False, "sample_images": 0, "device": "cpu"},
    }
    for key, value in over.items():
        node = base
        *path, last = key.split("__")
        for p in path:
            node = node.setdefault(p, {})
        node[last] = value
    return TrainConfig.model_validate(base)


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    t = Trainer(micro(tmp_path_factory.mktemp("straight")), progress=False)
    t.fit()
    return _weights(t.model)


STOP_STEP = 5  # the step (1-based) during which the signal arrives; 6 batches make one epoch


def _arm(trainer, where, sig):
    """Send ``sig`` to this process once, at ``where`` inside step STOP_STEP."""
    fired = []

    def fire(*_):
        if not fired and trainer.step == STOP_STEP - 1 and trainer.model.training:
            fired.append(True)
            os.kill(os.getpid(), sig)

    if where == "forward":
        trainer.model.stem.register_forward_pre_hook(fire)
    elif where == "backward":
        next(trainer.model.parameters()).register_hook(lambda g: fire() or g)
    elif where == "after_optimizer_step":
        trainer.optimizer.register_step_post_hook(fire)
    return fired


class StopInStepEnd(Trainer):
    def on_step_end(self, step, logs):
        if step == STOP_STEP:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("where, sig", [
    ("forward", signal.SIGINT),
    ("backward", signal.SIGINT),
    ("after_optimizer_step", signal.SIGINT),
    ("after_optimizer_step", signal.SIGTERM),
    ("on_step_end", signal.SIGINT),
], ids=lambda v: v.name if isinstance(v, signal.Signals) else v)
def test_a_stop_anywhere_in_a_step_resumes_bit_for_bit(tmp_path, straight, where, sig):
    cfg = micro(tmp_path)
    cls = StopInStepEnd if where == "on_step_end" else Trainer
    t = cls(cfg, progress=False)
    fired = _arm(t, where, sig) if where != "on_step_end" else [True]
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        t.fit()
    assert fired
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    state = json.loads((cfg.run_dir / "checkpoints" / "last" / "training_state.json").read_text())
    assert state["state"]["step"] == STOP_STEP  # the step in flight was completed and counted
    resumed = Trainer(cfg, resume=True, progress=False)
    resumed.fit()
    assert resumed.step == 8
    assert torch.equal(_weights(resumed.model), straight)


def test_resume_refuses_a_changed_config_naming_each_field(tmp_path):
    Trainer(micro(tmp_path, train__steps=3), progress=False).fit()
    changed = micro(tmp_path, train__steps=3, model__base_width=6, optim__lr=2e-3)
    with pytest.raises(TrainingError) as info:
        Trainer(changed, resume=True, progress=False).fit()
    run = changed.run_dir
    assert str(info.value) == (
        f"{run}: config differs from the saved run in model.base_width (4 -> 6), "
        "optim.lr (0.001 -> 0.002); start a new run (another name, or --overwrite) to change these"
    )
    # where and how fast a run goes, and how long it is, may change
    ok = micro(tmp_path, train__steps=4, train__num_workers=1, train__log_every=7,
               train__compile=False, train__val_every=2, train__tensorboard=True)
    Trainer(ok, resume=True, progress=False).fit()


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(TrainingError, match="no checkpoint to resume from"):
        Trainer(micro(tmp_path), resume=True, progress=False).fit()


def test_extending_a_run_keeps_the_learning_rate_schedule(tmp_path):
    lrs = {}

    class Spy(Trainer):
        def on_step_end(self, step, logs):
            lrs[step] = logs["lr"]

    first = micro(tmp_path, train__steps=6, optim__schedule="cosine", optim__lr=1e-2)
    Spy(first, progress=False).fit()
    final = 1e-2 * first.optim.min_lr_ratio
    assert lrs[6] == pytest.approx(final)
    longer = micro(tmp_path, train__steps=9, optim__schedule="cosine", optim__lr=1e-2)
    t = Spy(longer, resume=True, progress=False)
    t._prepare_run_dir()
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(final)  # the lr step 7 trains with
    assert t.schedule_steps == 6
    t.run_log.close()
    Spy(longer, resume=True, progress=False).fit()
    for step in (7, 8, 9):  # held at the end of the original schedule, not restarted
        assert lrs[step] == pytest.approx(1e-2 * lr_factor(first, step, 6)) == pytest.approx(final)


def test_a_new_run_refuses_a_used_folder_unless_overwrite(tmp_path):
    cfg = micro(tmp_path, train__steps=2)
    cfg.run_dir.mkdir(parents=True)
    (cfg.run_dir / "metrics.csv").write_text("step\n99\n")  # a run that died before a checkpoint
    (cfg.run_dir / "notes.txt").write_text("mine")
    with pytest.raises(TrainingError, match="--resume to continue it, --overwrite to replace it"):
        Trainer(cfg, progress=False).fit()
    Trainer(cfg, overwrite=True, progress=False).fit()
    rows = list(csv.DictReader((cfg.run_dir / "metrics.csv").open()))
    assert [r["step"] for r in rows] == ["2"]
    assert (cfg.run_dir / "notes.txt").read_text() == "mine"  # only run artifacts are replaced


def test_rows_after_the_resumed_step_are_not_repeated(tmp_path):
    cfg = micro(tmp_path, train__val_every=2, train__checkpoint_every=4)

    class Crash(Trainer):
        def on_step_end(self, step, logs):
            if step == 7:
                raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        Crash(cfg, progress=False).fit()
    Trainer(cfg, resume=True, progress=False).fit()  # resumes from step 4
    rows = list(csv.DictReader((cfg.run_dir / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8]


def test_fit_in_a_worker_thread_leaves_signal_handling_alone(tmp_path):
    import threading

    before = signal.getsignal(signal.SIGINT)
    result = {}
    t = threading.Thread(target=lambda: result.update(
        Trainer(micro(tmp_path, train__steps=2), progress=False).fit()))
    t.start()
    t.join()
    assert result["val_mae"] > 0 and signal.getsignal(signal.SIGINT) is before

"""train.init_weights: a run starts from another run's weights (stage-2 fine-tuning) with a fresh
optimiser; another architecture is refused in one line; resuming ignores the field."""

from __future__ import annotations

import pytest
import torch

from mcnn.train.errors import TrainingError
from mcnn.train.trainer import Trainer


@pytest.fixture
def source_run(tiny_config):
    cfg = tiny_config(name="stage1", train__steps=2, train__val_every=2, train__checkpoint_every=2,
                      train__tensorboard=False, train__sample_images=0, train__device="cpu")
    Trainer(cfg, progress=False).fit()
    return cfg.run_dir


def test_init_weights_loads_the_same_weights_with_a_fresh_optimiser(tiny_config, source_run):
    from mcnn.weights import load_model

    saved, _ = load_model(source_run / "checkpoints" / "last")
    for path in (source_run / "checkpoints" / "last",
                 source_run / "checkpoints" / "last" / "model.safetensors", source_run):
        cfg = tiny_config(name="stage2", train__init_weights=str(path), train__device="cpu",
                          optim__lr=1e-4)
        trainer = Trainer(cfg, progress=False)
        mine = trainer.model.state_dict()
        for k, v in saved.state_dict().items():
            assert torch.equal(mine[k].cpu(), v), k
        assert trainer.step == 0 and not trainer.optimizer.state  # fresh optimiser and schedule
        assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_another_architecture_is_one_line_naming_the_file(tiny_config, source_run):
    cfg = tiny_config(name="wide", train__init_weights=str(source_run / "checkpoints" / "last"),
                      model__base_width=4, train__device="cpu")
    with pytest.raises(TrainingError) as err:
        Trainer(cfg, progress=False)
    msg = str(err.value)
    assert "\n" not in msg and "model.safetensors" in msg and "train.init_weights" in msg
    assert "model.base_width=8 there, 4 here" in msg
    missing = tiny_config(name="x", train__init_weights=str(source_run / "nope"))
    with pytest.raises(TrainingError, match=r"^train.init_weights: .*nope: no such checkpoint$"):
        Trainer(missing, progress=False)


def test_a_fine_tuning_run_trains_and_resumes_without_its_source(tiny_config, source_run,
                                                                   tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(source_run / "checkpoints" / "last", copy)
    kw = dict(name="ft", train__init_weights=str(copy), train__steps=2, train__val_every=2,
              train__checkpoint_every=2, train__tensorboard=False, train__sample_images=0,
              train__device="cpu")
    Trainer(tiny_config(**kw), progress=False).fit()
    shutil.rmtree(copy)  # a resumed run reads its own checkpoint, not the source weights
    kw["train__steps"] = 3
    trainer = Trainer(tiny_config(**kw), resume=True, progress=False)
    trainer.fit()
    assert trainer.step == 3

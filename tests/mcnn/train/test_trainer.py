"""The training loop: it learns, logs, checkpoints, resumes exactly, and refuses bad setups clearly."""

import csv

import pytest
import torch

from mcnn.train.errors import TrainingError
from mcnn.train.trainer import Trainer
from mcnn.weights import load_model


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_training_reduces_validation_error_and_writes_every_artifact(tiny_config):
    cfg = tiny_config(train__steps=40, train__val_every=10)
    trainer = Trainer(cfg)
    untrained = trainer.validate()["val_mae"]
    metrics = trainer.fit()
    assert metrics["val_mae"] < 0.8 * untrained
    run = cfg.run_dir
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    assert [int(r["step"]) for r in rows] == [10, 20, 30, 40]
    assert float(rows[-1]["val_mae"]) == pytest.approx(metrics["val_mae"])
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert (run / "samples" / "step_0000040.png").stat().st_size > 1000
    assert (run / "config.json").is_file()
    model, mcfg = load_model(run / "checkpoints" / "best")
    assert mcfg == cfg.model
    best = min(float(r["val_mae"]) for r in rows)
    assert trainer.best_val_mae == pytest.approx(best)


def test_resume_after_interrupt_matches_an_uninterrupted_run_exactly(tiny_config):
    straight = Trainer(tiny_config(name="straight"))
    straight.fit()

    class StopAt13(Trainer):
        def on_step_end(self, step, logs):
            if step == 13:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        StopAt13(tiny_config(name="resumed")).fit()
    resumed = Trainer(tiny_config(name="resumed"), resume=True)
    assert resumed.step == 0  # state is loaded when fit starts
    resumed.fit()
    assert resumed.step == 20
    assert torch.equal(_weights(resumed.model), _weights(straight.model))


def test_existing_run_needs_resume_flag(tiny_config):
    Trainer(tiny_config(train__steps=5)).fit()
    with pytest.raises(TrainingError, match="--resume"):
        Trainer(tiny_config(train__steps=5)).fit()


def test_channel_and_scale_mismatch_is_named(tiny_config):
    with pytest.raises(TrainingError, match="model.in_channels=3 but the data inputs have 1"):
        Trainer(tiny_config(model__in_channels=3))
    with pytest.raises(TrainingError, match="output_scale=2"):
        Trainer(tiny_config(model__output_scale=2))


def test_too_few_examples_for_a_batch(tiny_config):
    with pytest.raises(TrainingError, match="batch_size=64"):
        Trainer(tiny_config(train__batch_size=64))


def test_ssim_and_adversarial_terms_train_and_are_logged(tiny_config):
    seen = {}

    class Spy(Trainer):
        def on_step_end(self, step, logs):
            seen.update(logs)

    cfg = tiny_config(loss__ssim_weight=0.1, loss__adversarial_weight=0.01,
                      loss__discriminator_width=8, train__steps=4)
    t = Spy(cfg)
    t.fit()
    for key in ("loss/one_minus_ssim", "loss/adversarial_g", "loss/adversarial_d", "grad_norm"):
        assert key in seen and seen[key] == seen[key]  # present and not NaN
    # the discriminator's weights and optimiser are part of the checkpoint
    t2 = Trainer(cfg, resume=True)
    t2._prepare_run_dir()
    for a, b in zip(t.disc.parameters(), t2.disc.parameters(), strict=True):
        assert torch.equal(a, b)


def test_coarse_to_fine_schedule_reaches_full_resolution_only(tiny_config):
    weights = []

    class Spy(Trainer):
        def on_step_end(self, step, logs):
            weights.append(self.weights(step))

    Spy(tiny_config(loss__branch_schedule={"kind": "coarse_to_fine"}, train__steps=10)).fit()
    assert weights[0][2] > weights[0][0] and weights[-1][0] > 0.99


def test_bf16_autocast_path_runs_on_cpu(tiny_config):
    t = Trainer(tiny_config(train__precision="bf16", train__steps=3))
    assert t.amp_dtype == torch.bfloat16
    assert t.fit()["val_mae"] > 0


def test_torch_compile_path_trains_like_eager(tiny_config):
    losses = {}

    class Spy(Trainer):
        def on_step_end(self, step, logs):
            losses.setdefault(self.cfg.name, []).append(logs["loss/total"])

    Spy(tiny_config(name="eager", train__steps=3, train__val_every=3)).fit()
    Spy(tiny_config(name="compiled", train__steps=3, train__val_every=3, train__compile=True)).fit()
    assert losses["compiled"] == pytest.approx(losses["eager"], rel=1e-3)


def test_a_diverging_loss_stops_with_a_one_line_error_and_keeps_finite_weights(tmp_path):
    from mcnn.weights import load_model
    from tests.mcnn.train.test_resume import micro

    class Diverge(Trainer):
        def training_step(self, x, y):
            logs = super().training_step(x, y)
            if self.step == 3:  # the 4th step: weights and loss go non-finite
                with torch.no_grad():
                    next(self.model.parameters()).fill_(float("nan"))
                logs["loss/total"] = float("nan")
            return logs

    with pytest.raises(TrainingError) as info:
        Diverge(micro(tmp_path), progress=False).fit()
    assert str(info.value) == (
        "loss is nan at step 4; lower optim.lr, set optim.grad_clip, or check the data for "
        "NaN/inf (checkpoints/last keeps step 3, with finite weights)")
    model, _ = load_model(tmp_path / "run" / "checkpoints" / "last")
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_metrics_csv_has_per_channel_columns(tiny_config):
    cfg = tiny_config(train__steps=2, train__val_every=2, train__tensorboard=False)
    Trainer(cfg, progress=False).fit()
    header = (cfg.run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[:8] == ["step", "epoch", "elapsed_s", "train_loss", "lr", "val_mae", "val_psnr",
                          "val_ssim"]
    assert header[8:] == ["val_mae_c0", "val_psnr_c0", "val_ssim_c0", "val_psnr_range_c0"]

"""A micro convergence benchmark: files and their structure, fairness (no clipping, same initial
trunk per seed), determinism per seed, and the settings' scale presets."""

import csv
import json

import pytest
import torch

from mcnn.bench.convergence import (
    CachedPairs,
    ConvergenceSettings,
    CurveTrainer,
    _datasets,
    resummarize,
    run_convergence,
    settings_for,
    train_config,
    trunk_fingerprint,
    trunk_state,
)
from mcnn.models import MCNN

MICRO = dict(size=16, depth=2, base_width=4, max_width=8, batch_size=2, steps=20, val_every=5,
             val_examples=4, examples_per_epoch=16, device="cpu", step_time_seconds=0.05,
             checkpoints=[10, 100], smooth_points=3)


def test_micro_benchmark_writes_curves_plot_and_summary(tmp_path):
    s = ConvergenceSettings(seeds=[0, 1], variants=["unet", "mcnn-equal"], skips=["add"], **MICRO)
    summary = run_convergence(s, tmp_path)
    with open(tmp_path / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["variant", "skip", "seed", "step", "val_mae", "train_time_s",
                             "train_loss"]
    assert len(rows) == 2 * 2 * 4  # variants x seeds x validations (5, 10, 15, 20)
    assert {int(r["step"]) for r in rows} == {5, 10, 15, 20}
    times = [float(r["train_time_s"]) for r in rows if r["variant"] == "unet" and r["seed"] == "0"]
    assert times == sorted(times) and times[0] > 0
    png = (tmp_path / "convergence.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert summary["settings"]["out"] == str(tmp_path)
    assert summary["settings"]["grad_clip"] is None
    assert "moving median" in summary["method"]
    assert isinstance(summary["initial_trunk_mismatches"], list)
    entry = summary["results"]["add"]["mcnn-equal"]
    assert list(entry["mae_at_step"]) == ["10", "20"]
    assert set(entry["reach"]) == {"0.1", "0.07", "unet_final"}
    assert entry["final_mae"]["n"] == 2 and entry["final_mae"]["median"] > 0
    assert {"q25", "q75", "min", "max"} <= set(entry["final_mae"])
    assert set(entry["vs_baseline"]) == {"late_mae", "final_mae", "reach"}
    times_ms = summary["step_time_ms"]["add"]
    assert set(times_ms) == {"unet", "mcnn-equal"}
    assert times_ms["unet"]["ratio_to_baseline"] == 1.0
    assert times_ms["mcnn-equal"]["ms_p10"] <= times_ms["mcnn-equal"]["ms_median"]
    assert summary["side_output_step_ratio"]["add"]["mcnn-equal"] == pytest.approx(
        times_ms["mcnn-equal"]["ms_median"] / times_ms["unet"]["ms_median"], rel=1e-3)
    assert summary["device_name"] and summary["torch"] and summary["threads"] >= 1
    assert len(summary["ranking_by_late_mae"]) == 2
    # the summary can be rebuilt from curves.csv alone, with other levels and smoothing
    again = resummarize(tmp_path, levels=[0.5], smooth_points=1)
    assert set(again["results"]["add"]["unet"]["reach"]) == {"0.5", "unet_final"}
    assert again["settings"]["smooth_points"] == 1
    assert again["step_time_ms"] == summary["step_time_ms"]
    assert not (tmp_path / ".runs").exists()


def test_every_variant_trains_without_gradient_clipping(tmp_path):
    s = ConvergenceSettings(**MICRO)
    for variant in s.variants:
        cfg = train_config(s, variant, "add", 0, tmp_path)
        assert cfg.optim.grad_clip is None
        assert cfg.optim.schedule == "constant" and cfg.optim.warmup_steps == 0


def test_variants_of_a_seed_share_data_seed_and_batch_order_seed(tmp_path):
    s = ConvergenceSettings(variants=["unet", "mcnn-equal", "mcnn-coarse_to_fine"], **MICRO)
    cfgs = [train_config(s, v, k, 3, tmp_path) for v in s.variants for k in s.skips]
    assert {c.data.seed for c in cfgs} == {0}
    assert {c.train.seed for c in cfgs} == {3}
    assert len({c.data.model_dump_json() for c in cfgs}) == 1


def _initial_trainers(tmp_path, seed, skip):
    s = ConvergenceSettings(variants=["unet", "mcnn-equal"], seeds=[seed], skips=[skip], **MICRO)
    train, val = _datasets(s, {})
    return {v: CurveTrainer(train_config(s, v, skip, seed, tmp_path), train, val, progress=False)
            for v in s.variants}


@pytest.mark.parametrize("skip", ["add", "concat"])
def test_unet_and_mcnn_of_a_seed_start_from_identical_trunk_weights(tmp_path, skip):
    trainers = _initial_trainers(tmp_path, seed=7, skip=skip)
    unet, mcnn = trainers["unet"].model, trainers["mcnn-equal"].model
    assert mcnn.branches > 0 and unet.branches == 0
    u, m = trunk_state(unet), trunk_state(mcnn)
    assert set(u) == set(m)  # the heads are the only difference in structure
    heads = set(mcnn.state_dict()) - set(m)
    assert heads and all(".head." in k or k.startswith("bottleneck_head.") for k in heads)
    different = [k for k in u if not torch.equal(u[k], m[k])]
    assert different == [], f"trunk differs in {different[:5]}"
    assert trunk_fingerprint(unet) == trunk_fingerprint(mcnn)


def test_trunk_fingerprint_tells_different_initial_weights_apart():
    cfg = train_config(ConvergenceSettings(**MICRO), "unet", "add", 0, ".").model
    torch.manual_seed(0)
    a = MCNN(cfg)
    torch.manual_seed(0)
    b = MCNN(cfg)
    torch.manual_seed(1)
    c = MCNN(cfg)
    assert trunk_fingerprint(a) == trunk_fingerprint(b) != trunk_fingerprint(c)


def test_cached_pairs_returns_the_same_examples_per_epoch():
    s = ConvergenceSettings(**MICRO)
    cache: dict = {}
    train, _ = _datasets(s, cache)
    assert isinstance(train, CachedPairs)
    first = train[3]
    assert torch.equal(train[3][0], first[0]) and (0, 3) in cache


def _maes(path):
    with open(path, newline="") as f:
        return [r["val_mae"] for r in csv.DictReader(f)]


def test_same_seed_gives_identical_curves(tmp_path):
    s = ConvergenceSettings(seeds=[3], variants=["mcnn-coarse_to_fine"], skips=["concat"],
                            **{**MICRO, "step_time_seconds": 0})
    a = run_convergence(s, tmp_path / "a")
    b = run_convergence(s, tmp_path / "b")
    assert _maes(tmp_path / "a" / "curves.csv") == _maes(tmp_path / "b" / "curves.csv")
    for skip, per in a["results"].items():
        for variant, entry in per.items():
            other = b["results"][skip][variant]
            assert entry["final_mae"] == other["final_mae"]
            assert entry["mae_at_step"] == other["mae_at_step"]


def test_scales_fill_only_the_fields_not_given_and_defaults_are_fair():
    default = ConvergenceSettings()
    assert default.scale == "cpu" and len(default.seeds) >= 5 and default.grad_clip is None
    cpu = settings_for("cpu", seeds=[0, 1, 2])
    assert (cpu.size, cpu.depth, cpu.mcnn_branches, cpu.steps) == (64, 5, 4, 800)
    paper = settings_for("paper")
    assert (paper.size, paper.depth, paper.base_width, paper.max_width, paper.batch_size,
            paper.steps, paper.lr, paper.val_every) == (256, 7, 64, 512, 8, 2000, 1e-3, 50)
    mixed = ConvergenceSettings.model_validate({"scale": "paper", "size": 128, "steps": 10})
    assert (mixed.size, mixed.steps, mixed.depth, mixed.base_width) == (128, 10, 7, 64)


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="unknown variants"):
        settings_for("cpu", variants=["unet", "resnet"])
    with pytest.raises(ValueError, match="multiple of"):
        settings_for("cpu", size=72)
    with pytest.raises(ValueError, match="unknown scale"):
        settings_for("laptop")
    with pytest.raises(ValueError, match="smooth_points=4 must be odd"):
        settings_for("cpu", smooth_points=4)
    with pytest.raises(ValueError, match="scale"):
        ConvergenceSettings.model_validate({"scale": "laptop"})


def test_validation_set_is_built_once_and_held_in_memory_equal_to_build_datasets():
    from mcnn.data.build import build_datasets

    s = ConvergenceSettings(**MICRO)
    _, val = _datasets(s, {})
    _, fresh = build_datasets(train_config(s, "unet", "add", 0, ".").data, 0)
    assert len(val) == len(fresh) == s.val_examples
    for i in range(len(val)):
        assert torch.equal(val[i][0], fresh[i][0]) and torch.equal(val[i][1], fresh[i][1])

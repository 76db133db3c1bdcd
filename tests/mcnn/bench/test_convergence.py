"""A micro convergence benchmark: files and their structure, and determinism per seed."""

import csv
import json

import pytest

from mcnn.bench.convergence import (
    ConvergenceSettings,
    resummarize,
    run_convergence,
    settings_for,
)

MICRO = dict(size=16, depth=2, base_width=4, max_width=8, batch_size=2, steps=20, val_every=5,
             val_examples=4, examples_per_epoch=16, device="cpu", step_time_seconds=0.05,
             checkpoints=[10, 100])


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
    entry = summary["results"]["add"]["mcnn-equal"]
    assert list(entry["mae_at_step"]) == ["10", "20"]
    assert set(entry["reach"]) == {"0.1", "0.07", "unet_final"}
    assert entry["final_mae"]["n"] == 2 and entry["final_mae"]["median"] > 0
    assert set(summary["step_time_ms"]["add"]) == {"unet", "mcnn-equal"}
    assert "mcnn-equal" in summary["side_output_overhead_pct"]["add"]
    assert summary["device_name"] and summary["torch"]
    assert len(summary["ranking_by_late_mae"]) == 2
    # the summary can be rebuilt from curves.csv alone, with other levels
    again = resummarize(tmp_path, levels=[0.5])
    assert set(again["results"]["add"]["unet"]["reach"]) == {"0.5", "unet_final"}
    assert again["step_time_ms"] == summary["step_time_ms"]
    assert not (tmp_path / ".runs").exists()


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


def test_scales_and_bad_settings():
    cpu = settings_for("cpu", seeds=[0, 1, 2])
    assert (cpu.size, cpu.depth, cpu.mcnn_branches) == (64, 5, 4)
    paper = settings_for("paper")
    assert (paper.size, paper.depth, paper.base_width, paper.max_width, paper.batch_size,
            paper.steps, paper.lr) == (256, 7, 64, 512, 8, 2000, 1e-3)
    with pytest.raises(ValueError, match="unknown variants"):
        settings_for("cpu", variants=["unet", "resnet"])
    with pytest.raises(ValueError, match="multiple of"):
        settings_for("cpu", size=72)
    with pytest.raises(ValueError, match="unknown scale"):
        settings_for("laptop")

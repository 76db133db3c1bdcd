"""The speed benchmark on a tiny network with a tiny budget: keys, counts, spread and ratios."""

import pytest
import torch

from mcnn.bench.speed import SpeedCase, add_speedups, measure_case, run_speed_bench
from mcnn.models import MCNN, ModelConfig

TINY = ModelConfig(depth=2, base_width=4, max_width=8, branches=1)


def test_run_speed_bench_covers_every_case_with_spread_and_ratios():
    r = run_speed_bench({"tiny": TINY}, torch.device("cpu"), sizes=[16, 32], batch_sizes=[1, 2],
                        dtypes=["bf16", "fp32"], modes=["eager"], repeats=4, warmup=1)
    assert r["benchmark"] == "speed" and r["device"] == "cpu"
    assert r["device_name"] and r["torch"] == torch.__version__ and r["threads"] >= 1
    assert r["settings"]["repeats"] == 4 and r["settings"]["warmup"] == 1
    assert r["networks"]["tiny"]["parameters"] > 0
    assert r["networks"]["tiny"]["config"]["depth"] == 2
    assert len(r["cases"]) == 2 * 2 * 2
    assert [c["dtype"] for c in r["cases"][:4]] == ["fp32"] * 4  # the baseline is measured first
    for c in r["cases"]:
        assert c["repeats"] == 4 and c["warmup"] == 1
        assert c["ms_per_call_min"] <= c["ms_per_call_p10"] <= c["ms_per_call_median"]
        assert c["ms_per_call_median"] <= c["ms_per_call_p90"] <= c["ms_per_call_max"]
        assert c["fps_p10"] <= c["fps"] <= c["fps_p90"]
        assert c["fps"] == pytest.approx(c["batch"] / (c["ms_per_call_median"] / 1e3), rel=1e-3)
        if c["dtype"] == "fp32":
            assert c["speedup_vs_fp32_eager"] == 1.0
        else:
            twin = next(b for b in r["cases"] if b["dtype"] == "fp32" and b["size"] == c["size"]
                        and b["batch"] == c["batch"])
            assert c["speedup_vs_fp32_eager"] == pytest.approx(
                twin["ms_per_call_median"] / c["ms_per_call_median"], rel=1e-3)


def test_speedups_are_ratios_to_the_fp32_eager_twin_and_none_without_one():
    cases = [
        {"network": "n", "size": 8, "batch": 1, "dtype": "fp32", "mode": "eager",
         "ms_per_call_median": 10.0},
        {"network": "n", "size": 8, "batch": 1, "dtype": "bf16", "mode": "compiled",
         "ms_per_call_median": 4.0},
        {"network": "n", "size": 16, "batch": 1, "dtype": "bf16", "mode": "eager",
         "ms_per_call_median": 4.0},
        {"network": "n", "size": 8, "batch": 1, "dtype": "fp32", "mode": "compiled",
         "fps": None, "error": "RuntimeError: x"},
    ]
    add_speedups(cases)
    assert [c["speedup_vs_fp32_eager"] for c in cases] == [1.0, 2.5, None, None]


def test_a_failing_case_is_recorded_not_raised():
    model = MCNN(TINY).eval()
    bad = ModelConfig(**{**TINY.model_dump(), "in_channels": 3})  # input does not fit the model
    r = measure_case(model, bad, SpeedCase("tiny", 16, 1, "fp32", "eager"), torch.device("cpu"),
                     seconds=0.01)
    assert r["fps"] is None and "RuntimeError" in r["error"]


def test_channels_last_and_contiguous_inputs_both_run_on_cpu():
    model = MCNN(TINY).eval()
    for cl in (True, False):
        r = measure_case(model, TINY, SpeedCase("tiny", 16, 2, "fp32", "eager"),
                         torch.device("cpu"), seconds=0.0, repeats=3, channels_last=cl)
        assert r["fps"] > 0 and r["repeats"] == 3


def test_bad_repeats_and_warmup_are_user_errors():
    with pytest.raises(ValueError, match="repeats"):
        run_speed_bench({"tiny": TINY}, torch.device("cpu"), repeats=0)
    with pytest.raises(ValueError, match="warmup"):
        run_speed_bench({"tiny": TINY}, torch.device("cpu"), warmup=-1)

"""The speed benchmark on a tiny network with a tiny time budget: keys, counts and positive fps."""

import torch

from mcnn.bench.speed import SpeedCase, measure_case, run_speed_bench, time_calls
from mcnn.models import MCNN, ModelConfig

TINY = ModelConfig(depth=2, base_width=4, max_width=8, branches=1)


def test_run_speed_bench_covers_every_case_with_positive_fps():
    r = run_speed_bench({"tiny": TINY}, torch.device("cpu"), sizes=[16, 32], batch_sizes=[1, 2],
                        dtypes=["fp32", "bf16"], modes=["eager"], seconds=0.02, warmup=1)
    assert r["benchmark"] == "speed" and r["device"] == "cpu"
    assert r["device_name"] and r["torch"] == torch.__version__ and r["threads"] >= 1
    assert r["networks"]["tiny"]["parameters"] > 0
    assert r["networks"]["tiny"]["config"]["depth"] == 2
    assert len(r["cases"]) == 2 * 2 * 2
    for c in r["cases"]:
        assert {"network", "size", "batch", "dtype", "mode", "fps", "ms_per_call_median",
                "repeats"} <= set(c)
        assert c["fps"] > 0 and c["repeats"] >= 3
        assert c["fps"] == round(c["batch"] / (c["ms_per_call_median"] / 1e3), 3) or abs(
            c["fps"] * c["ms_per_call_median"] / 1e3 - c["batch"]) < 1e-2


def test_a_failing_case_is_recorded_not_raised():
    model = MCNN(TINY).eval()
    bad = ModelConfig(**{**TINY.model_dump(), "in_channels": 3})  # input does not fit the model
    r = measure_case(model, bad, SpeedCase("tiny", 16, 1, "fp32", "eager"), torch.device("cpu"),
                     seconds=0.01)
    assert r["fps"] is None and "RuntimeError" in r["error"]


def test_time_calls_runs_warmup_then_at_least_min_repeats():
    calls = []
    times = time_calls(lambda: calls.append(1), torch.device("cpu"), seconds=0.0, warmup=2,
                       min_repeats=4)
    assert len(times) == 4 and len(calls) == 6 and all(t >= 0 for t in times)

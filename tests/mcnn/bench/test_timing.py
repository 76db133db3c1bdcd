"""Timing helpers: warm-up then the asked number of timed calls, interleaving, and the statistics."""

import pytest
import torch

from mcnn.bench.timing import time_calls, time_interleaved, time_stats

CPU = torch.device("cpu")


def test_time_calls_runs_warmup_then_at_least_min_repeats():
    calls = []
    times = time_calls(lambda: calls.append(1), CPU, seconds=0.0, warmup=2, min_repeats=4)
    assert len(times) == 4 and len(calls) == 6 and all(t >= 0 for t in times)


def test_time_calls_with_repeats_times_exactly_that_many_calls():
    calls = []
    times = time_calls(lambda: calls.append(1), CPU, seconds=100.0, warmup=3, repeats=7)
    assert len(times) == 7 and len(calls) == 10


def test_time_interleaved_alternates_blocks_and_honours_counts():
    order = []
    fns = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    times = time_interleaved(fns, CPU, warmup=1, rounds=3, repeats=5)
    assert {k: len(v) for k, v in times.items()} == {"a": 5, "b": 5}
    # warm-up a, b; then rounds of 2, 2, 1 calls each, a's block before b's
    assert "".join(order) == "ab" + "aabb" + "aabb" + "ab"
    times = time_interleaved(fns, CPU, seconds=0.0, warmup=0, rounds=2, min_repeats=3)
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}


def test_time_stats_gives_median_p10_p90_and_rates():
    times = [0.010, 0.020, 0.030, 0.040, 0.050, 0.060, 0.070, 0.080, 0.090, 0.100, 0.110]
    st = time_stats(times, per_call_items=4)
    assert (st["ms_median"], st["ms_p10"], st["ms_p90"]) == (60.0, 20.0, 100.0)
    assert (st["ms_min"], st["ms_max"], st["repeats"]) == (10.0, 110.0, 11)
    assert st["per_s_median"] == pytest.approx(4 / 0.06, abs=1e-3)
    assert st["per_s_p10"] == pytest.approx(4 / 0.1, abs=1e-3)  # the slow end
    assert st["per_s_p90"] == pytest.approx(4 / 0.02, abs=1e-3)
    with pytest.raises(ValueError):
        time_stats([])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_event_timing_measures_a_synchronised_call():
    dev = torch.device("cuda")
    x = torch.randn(2048, 2048, device=dev)
    times = time_calls(lambda: x @ x, dev, seconds=0.0, warmup=2, repeats=5)
    assert len(times) == 5 and all(t > 0 for t in times)

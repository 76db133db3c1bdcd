"""The streaming benchmark through the live path on CPU: numbers, ratios, modes, errors, CLI."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from apps import bench
from apps.live.bench import live_stream
from mcnn.bench.streaming import run_streaming_bench
from mcnn.models import ModelConfig

TINY = ModelConfig(depth=2, base_width=4, max_width=8, branches=1)
CPU = torch.device("cpu")


def test_eager_and_pinned_cases_report_live_numbers_and_ratios_to_forward():
    r = run_streaming_bench({"tiny": TINY}, CPU, live_stream, sizes_hw=[(16, 24)],
                            modes=["eager", "pinned"], frames=8, warmup=2, forward_seconds=0.05)
    assert r["benchmark"] == "streaming" and r["device"] == "cpu" and r["settings"]["batch"] == 1
    assert [c["mode"] for c in r["cases"]] == ["eager", "pinned"]
    for c in r["cases"]:
        assert c["pinned"] is False  # no page-locked memory without CUDA: a clean no-op
        assert (c["height"], c["width"]) == (16, 24) and c["frames_displayed"] == 8
        assert c["source_error"] is None and c["fps"] > 0
        assert 0 < c["latency_ms_median"] <= c["latency_ms_p95"]
        # end to end includes the inference, which includes the forward
        assert c["latency_ms_median"] >= c["inference_ms_median"] * 0.5
        assert c["fps_vs_forward"] == pytest.approx(c["fps"] / c["forward_fps"], rel=1e-3)
        assert c["latency_vs_forward_ms"] == pytest.approx(
            c["latency_ms_median"] / c["forward_ms_median"], rel=1e-2)


def test_reduce_overhead_mode_compiles_and_streams_on_cpu():
    r = run_streaming_bench({"tiny": TINY}, CPU, live_stream, sizes_hw=[(16, 16)],
                            modes=["reduce-overhead"], frames=4, warmup=1, forward_seconds=0.05)
    (c,) = r["cases"]
    assert "error" not in c, c.get("error")
    assert c["compile_mode"] == "reduce-overhead" and c["fps"] > 0 and c["frames_displayed"] == 4


def test_a_failing_case_is_recorded_not_raised():
    def broken(*_):
        raise RuntimeError("no display loop")

    r = run_streaming_bench({"tiny": TINY}, CPU, broken, sizes_hw=[(16, 16)], modes=["eager"],
                            frames=4, forward_seconds=0.05)
    assert r["cases"][0]["fps"] is None and "RuntimeError: no display loop" in r["cases"][0]["error"]


def test_bad_settings_are_value_errors():
    with pytest.raises(ValueError, match="unknown streaming mode"):
        run_streaming_bench({"tiny": TINY}, CPU, live_stream, modes=["graphs"])
    with pytest.raises(ValueError, match="frames must be >= 2"):
        run_streaming_bench({"tiny": TINY}, CPU, live_stream, frames=1)


def test_cli_prints_json_and_writes_out(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"model": TINY.model_dump(mode="json")}))
    out = tmp_path / "s.json"
    rc = bench.main(["streaming", "--config", str(cfg), "--sizes", "16x24,16", "--modes", "eager",
                     "--frames", "4", "--warmup", "1", "--forward-seconds", "0.05",
                     "--device", "cpu", "--out", str(out)])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert [(c["height"], c["width"]) for c in printed["cases"]] == [(16, 24), (16, 16)]
    assert printed["networks"]["tiny"]["config"]["depth"] == 2


@pytest.mark.parametrize("argv, message", [
    (["streaming", "--sizes", "640by360"], "expected HxW"),
    (["streaming", "--frames", "1"], "--frames"),
    (["streaming", "--source-fps", "0", "--preset", "small"], "--source-fps"),
])
def test_cli_bad_arguments_are_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(bench.main(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mcnn-bench: error:") and message in err[0]

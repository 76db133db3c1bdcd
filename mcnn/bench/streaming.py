"""End-to-end streaming speed: a host frame in -> a host result out, batch 1, as the viewers run.

``speed`` times only ``MCNN.forward`` on a tensor already on the device. A live view also pays for
the host -> device copy, the device -> host copy, Python and thread hand-offs, and waiting for the
newest frame. A streaming case measures all of it: frames come from a source on their own clock
(``source_fps``), a worker runs ``Predictor.predict`` on the newest one (newest frame wins), and a
display loop takes the newest result; latency is capture time -> taken for display. The bare
``forward`` of the same predictor is timed in the same case, so ``fps_vs_forward`` (streaming fps /
forward fps) and ``latency_vs_forward_ms`` (latency median / forward median) say what the rest
costs on this machine.

Modes: ``eager`` (plain pageable copies), ``pinned`` (page-locked staging buffers and asynchronous
copies; on a machine without CUDA the same as eager, and the case says ``pinned: false``) and
``reduce-overhead`` (pinned + ``torch.compile(mode="reduce-overhead")``, i.e. CUDA graphs on CUDA;
on CPU an inductor compile without graphs). A case that fails (a compile error) is recorded with
its error, not hidden.

The live loop itself is not here (``mcnn`` knows nothing of sources and threads): the caller passes
``stream(infer, frame, frames, warmup, source_fps) -> stats``, which ``mcnn-bench streaming`` takes
from ``apps.live``; the stats need ``fps``, ``latency_ms_median``/``_p95`` and
``inference_ms_median``/``_p95``. Frames are ``(H, W, C)`` float32 in [0, 1].
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mcnn.bench.env import environment, synchronize
from mcnn.bench.timing import time_calls, time_stats
from mcnn.models import MCNN, ModelConfig, count_parameters

log = logging.getLogger(__name__)

STREAM_MODES = ("eager", "pinned", "reduce-overhead")

Infer = Callable[[np.ndarray], np.ndarray]
StreamFn = Callable[[Infer, np.ndarray, int, int, float], dict[str, Any]]

__all__ = ["STREAM_MODES", "StreamingCase", "measure_streaming_case", "run_streaming_bench"]


@dataclass(frozen=True)
class StreamingCase:
    network: str
    height: int
    width: int
    mode: str


def make_predictor(model: MCNN, device: torch.device, mode: str) -> Any:
    """The ``Predictor`` of a streaming mode (fp32, channels_last on CUDA as in the viewers)."""
    from mcnn.infer import Predictor

    if mode not in STREAM_MODES:
        raise ValueError(f"unknown streaming mode {mode!r}; choose from {list(STREAM_MODES)}")
    return Predictor(model, device=device, precision="fp32", pinned=mode != "eager",
                     compile="reduce-overhead" if mode == "reduce-overhead" else False)


def frame_infer(predictor: Any) -> Infer:
    """``(H, W, C)`` host frame -> host result, as ``stem-view``'s processor calls the model."""

    def infer(image: np.ndarray) -> np.ndarray:
        return predictor.predict(np.ascontiguousarray(image.transpose(2, 0, 1)))

    return infer


def _error(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__}: {msg[:300]}"


def measure_streaming_case(
    model: MCNN,
    config: ModelConfig,
    case: StreamingCase,
    device: torch.device,
    stream: StreamFn,
    *,
    frames: int = 100,
    warmup: int = 10,
    source_fps: float = 1000.0,
    forward_seconds: float = 1.0,
) -> dict[str, Any]:
    """One case: bare forward timing, then the streamed run, and their ratios (or an error)."""
    result: dict[str, Any] = {**case.__dict__}
    rng = np.random.default_rng(0)
    frame = rng.random((case.height, case.width, config.in_channels), dtype=np.float32)
    try:
        if case.mode == "reduce-overhead":
            torch._dynamo.reset()
        predictor = make_predictor(model, device, case.mode)
        infer = frame_infer(predictor)
        result.update(pinned=predictor.pinned, compile_mode=predictor.compile_mode)
        synchronize(device)
        t0 = time.perf_counter()
        infer(frame)  # first call: allocations, cuDNN choice, and the compile when compiled
        synchronize(device)
        first_s = time.perf_counter() - t0
        x = torch.from_numpy(frame.transpose(2, 0, 1).copy())[None].to(device)
        fwd = time_stats(time_calls(lambda: predictor.forward_only(x), device,
                                    seconds=forward_seconds, warmup=3, min_repeats=5))
        stats = stream(infer, frame, frames, warmup, source_fps)
    except Exception as exc:  # compile/backends fail in many ways; record and go on
        log.warning("%s: skipped (%s)", case, _error(exc))
        result.update(fps=None, error=_error(exc))
        return result
    fps = stats.get("fps") or 0.0
    lat = stats.get("latency_ms_median")
    result.update(
        fps=fps,
        latency_ms_median=lat, latency_ms_p95=stats.get("latency_ms_p95"),
        inference_ms_median=stats.get("inference_ms_median"),
        inference_ms_p95=stats.get("inference_ms_p95"),
        frames_displayed=stats.get("frames_displayed"),
        frames_skipped=stats.get("frames_skipped"),
        forward_ms_median=fwd["ms_median"], forward_ms_p90=fwd["ms_p90"],
        forward_fps=fwd["per_s_median"], forward_repeats=fwd["repeats"],
        fps_vs_forward=round(fps / fwd["per_s_median"], 4) if fwd["per_s_median"] else None,
        latency_vs_forward_ms=round(lat / fwd["ms_median"], 3) if lat and fwd["ms_median"] else None,
        first_call_s=round(first_s, 3), source_error=stats.get("source_error"),
    )
    return result


def run_streaming_bench(
    networks: dict[str, ModelConfig],
    device: torch.device,
    stream: StreamFn,
    *,
    sizes_hw: Sequence[tuple[int, int]] = ((128, 128),),
    modes: Sequence[str] = STREAM_MODES,
    frames: int = 100,
    warmup: int = 10,
    source_fps: float = 1000.0,
    forward_seconds: float = 1.0,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Every network x size x mode at batch 1; returns the JSON-ready result."""
    for m in modes:
        if m not in STREAM_MODES:
            raise ValueError(f"unknown streaming mode {m!r}; choose from {list(STREAM_MODES)}")
    if frames < 2:
        raise ValueError(f"frames must be >= 2 (fps needs two displayed frames), got {frames}")
    if warmup < 0 or source_fps <= 0 or forward_seconds <= 0:
        raise ValueError(f"warmup={warmup} must be >= 0, source_fps={source_fps} and "
                         f"forward_seconds={forward_seconds} > 0")
    result: dict[str, Any] = {
        "benchmark": "streaming",
        **environment(device),
        "settings": {
            "sizes_hw": [list(s) for s in sizes_hw], "modes": list(modes), "batch": 1,
            "frames": frames, "warmup": warmup, "source_fps": source_fps,
            "forward_seconds": forward_seconds,
            "what": "host (H, W, C) float32 frame -> Predictor.predict on a worker thread (newest "
            "frame wins) -> host result taken by a display loop polling every 1 ms; fps = "
            "displayed frames/s, latency = frame capture -> display (median, p95), inference = "
            "predict() incl. both copies; forward = the same predictor's bare network call on a "
            "device tensor (speed's timing); fps_vs_forward = fps / forward fps, "
            "latency_vs_forward_ms = latency median / forward median, same run",
        },
        "networks": {},
        "cases": [],
    }
    for name, cfg in networks.items():
        torch.manual_seed(0)
        model = MCNN(cfg).eval()
        result["networks"][name] = {
            "parameters": count_parameters(model), "config": cfg.model_dump(mode="json")
        }
        for height, width in sizes_hw:
            for mode in modes:
                case = StreamingCase(name, int(height), int(width), mode)
                r = measure_streaming_case(model, cfg, case, device, stream, frames=frames,
                                           warmup=warmup, source_fps=source_fps,
                                           forward_seconds=forward_seconds)
                result["cases"].append(r)
                if progress is not None:
                    progress(r)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return result

"""The paper's denoiser against a pix2pix-style U-Net of the same parameter count, in one run.

- **Networks**: the denoiser is ``configs/bench/denoiser.yaml`` (or any ``ModelConfig``) with its
  widths scaled by ``width_scale``; the U-Net has the same depth and kernel, concatenated skips, no
  branches, no low-pass front and pix2pix's stride-2 first convolution, and the base width (with
  ``max_width`` keeping the denoiser's ratio) whose parameter count is closest to the denoiser's
  (``match_unet_width``; within ``param_tolerance`` or it is an error).
- **Speed**: ``forward`` under ``torch.inference_mode`` at each size, the two networks timed
  interleaved in the same process (``mcnn.bench.timing.time_interleaved``); ``speed_ratio`` is the
  U-Net's median time / the denoiser's (>= 1: the denoiser is at least as fast).
- **Quality**: both trained by the project's ``Trainer`` for the same steps, seed and batches on the
  same simulated low-dose HAADF STEM frames (``StemAdfSimulator``, 0.04-2.2 e/px: input SNR about
  +5 to -12 dB, with detector defects; simulated before either trains, ``simulate_s``, so each
  ``train_s`` is its network's time alone), then PSNR (dB, per frame with the clean frame's range,
  averaged) on held-out frames; the raw input's PSNR is reported alongside.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from mcnn.bench.env import environment
from mcnn.bench.timing import time_interleaved, time_stats
from mcnn.models import MCNN, ModelConfig, count_parameters

log = logging.getLogger(__name__)

class DenoiserVsUnetSettings(BaseModel):
    """One paired run; the defaults fit a few minutes on 2 CPU cores."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    config: str | None = Field(
        default=None, description="Denoiser ModelConfig file (default: the denoiser preset, "
        "equal to configs/bench/denoiser.yaml).")
    width_scale: float = Field(
        default=0.25, gt=0, le=4, description="Multiplies the denoiser's base_width and max_width "
        "(1 = the paper's ~39M parameters).")
    branches: int | None = Field(
        default=None, ge=0, le=16, description="The denoiser's side outputs (None: the config's; "
        "0: none, which isolates what they cost or bring at this training length).")
    param_tolerance: float = Field(default=0.05, gt=0, le=1,
                                   description="Largest relative parameter mismatch allowed.")
    sizes_px: list[int] = Field(default_factory=lambda: [128, 512], min_length=1,
                                description="Square input sides timed (px).")
    batch: int = Field(default=1, ge=1, le=4096, description="Batch of the timed calls.")
    seconds: float = Field(default=3.0, gt=0, description="Timing budget per network and size (s).")
    warmup: int = Field(default=2, ge=0, description="Untimed calls per network and size.")
    rounds: int = Field(default=20, ge=1, description="Interleaved turns of the timing: short "
                        "blocks, so a burst of load on a shared machine falls on both networks.")
    train_steps: int = Field(default=300, ge=0, description="Training steps per network (0: no "
                             "training, PSNR not measured).")
    train_size_px: int = Field(default=64, ge=8, le=4096, description="Training frame side (px).")
    batch_size: int = Field(default=4, ge=1, le=4096)
    lr: float = Field(default=1e-3, gt=0, le=1, description="Adam, constant.")
    branch_schedule: Literal["constant", "decay"] = Field(
        default="decay", description="Denoiser's side-output weights: constant (equal all run) or "
        "decay (equal at the start, full-resolution output only at the end; the U-Net has none).")
    branch_decay_fraction: float = Field(
        default=1.0, gt=0, le=1, description="decay: the fraction of train_steps over which the "
        "side outputs fade out (1: the whole run; configs/denoise-stem-cpu.yaml uses about 1/3).")
    val_examples: int = Field(default=16, ge=1, description="Held-out frames for the PSNR.")
    dose_e_per_px_range: tuple[float, float] = Field(
        default=(0.04, 2.2), description="Electron dose, e/px (the paper's low-dose range).")
    seed: int = Field(default=0, ge=0, description="Initial weights, batch order and data.")
    device: str = Field(default="cpu", description="cpu, cuda, cuda:N or auto.")


def denoiser_config(s: DenoiserVsUnetSettings) -> ModelConfig:
    """The denoiser of ``s``: its config file (or the preset) with the widths scaled."""
    from mcnn.bench.presets import load_model_config, model_preset

    cfg = load_model_config(Path(s.config)) if s.config else model_preset("denoiser")
    base = max(1, round(cfg.base_width * s.width_scale))
    top = max(base, round(cfg.max_width * s.width_scale))
    update: dict[str, Any] = {"base_width": base, "max_width": top}
    if s.branches is not None:
        update["branches"] = s.branches
    return ModelConfig.model_validate({**cfg.model_dump(), **update})


def trainable_parameters(cfg: ModelConfig) -> int:
    """Trainable parameter count of ``MCNN(cfg)``, built on the meta device (no weights)."""
    with torch.device("meta"):
        return count_parameters(MCNN(cfg))


def unet_config(denoiser: ModelConfig, base_width: int, max_width: int) -> ModelConfig:
    """pix2pix-style U-Net with the denoiser's depth, kernel and channels."""
    return ModelConfig(
        in_channels=denoiser.in_channels, out_channels=denoiser.out_channels, depth=denoiser.depth,
        base_width=base_width, max_width=max_width, branches=0, skip="concat", cell="conv",
        kernel_size=denoiser.kernel_size, activation=denoiser.activation, norm=denoiser.norm,
        output_scale=denoiser.output_scale, lowpass=None, first_conv="stride2",
    )


def match_unet_width(denoiser: ModelConfig) -> ModelConfig:
    """The U-Net whose trainable parameter count is closest to the denoiser's: ``max_width``
    searched (bisection, the count grows with it) with ``base_width`` keeping the denoiser's
    max/base ratio, then the base widths next to it tried."""
    target = trainable_parameters(denoiser)
    ratio = denoiser.max_width / denoiser.base_width

    def cfg_for(top: int, base: int | None = None) -> ModelConfig:
        b = base if base is not None else max(1, round(top / ratio))
        return unet_config(denoiser, min(b, top), top)

    lo, hi = 1, 4096
    while lo < hi:  # smallest max_width with at least the target count
        mid = (lo + hi) // 2
        if trainable_parameters(cfg_for(mid)) >= target:
            hi = mid
        else:
            lo = mid + 1
    candidates = []
    for top in {max(1, lo - 1), lo}:
        b0 = max(1, round(top / ratio))
        candidates += [cfg_for(top, b) for b in range(max(1, b0 - 2), min(top, b0 + 2) + 1)]
    return min(candidates, key=lambda c: abs(trainable_parameters(c) - target))


def _time_pair(
    models: dict[str, torch.nn.Module], in_channels: int, s: DenoiserVsUnetSettings,
    device: torch.device,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for size in s.sizes_px:
        x = torch.randn(s.batch, in_channels, size, size, device=device)
        x = x.contiguous(memory_format=torch.channels_last)

        def call(m: torch.nn.Module, x: torch.Tensor = x) -> Callable[[], Any]:
            def run() -> Any:
                with torch.inference_mode():
                    return m(x)
            return run

        times = time_interleaved({k: call(m) for k, m in models.items()}, device,
                                 seconds=s.seconds, warmup=s.warmup, rounds=s.rounds)
        st = {k: time_stats(v, per_call_items=s.batch) for k, v in times.items()}
        entry: dict[str, Any] = {
            k: {"ms_median": v["ms_median"], "ms_p10": v["ms_p10"], "ms_p90": v["ms_p90"],
                "fps": v["per_s_median"], "repeats": v["repeats"]} for k, v in st.items()}
        entry["speed_ratio"] = round(st["unet"]["ms_median"] / st["denoiser"]["ms_median"], 4)
        out[str(size)] = entry
    return out


def train_config(s: DenoiserVsUnetSettings, model: ModelConfig, name: str, out_dir: Path):
    from mcnn.train.config import TrainConfig

    return TrainConfig.model_validate({
        "name": name, "out_dir": str(out_dir), "model": model.model_dump(),
        "loss": {"branch_schedule": _branch_schedule(s, model)},
        "data": {"kind": "simulated",
                 "simulator": {"name": "stem", "dose_e_per_px_range": list(s.dose_e_per_px_range),
                               "detector_noise_e": 0.05, "row_offset_e": 0.02,
                               "hot_pixel_fraction": 0.0002, "dead_pixel_fraction": 0.0002},
                 "size": s.train_size_px, "examples_per_epoch": max(s.batch_size * 64, 256),
                 "val_examples": s.val_examples, "seed": s.seed},
        "optim": {"optimizer": "adam", "lr": s.lr, "schedule": "constant", "warmup_steps": 0},
        "train": {"steps": s.train_steps, "batch_size": s.batch_size, "val_every": s.train_steps,
                  "checkpoint_every": s.train_steps, "seed": s.seed, "device": s.device,
                  "precision": "fp32", "tensorboard": False, "sample_images": 0},
    })


def _branch_schedule(s: DenoiserVsUnetSettings, model: ModelConfig) -> dict[str, Any]:
    if s.branch_schedule != "decay" or model.branches == 0:
        return {"kind": "constant"}
    end_step = max(1, round(s.train_steps * s.branch_decay_fraction))
    return {"kind": "linear", "end": [1.0, 0.0], "end_step": end_step}


def held_out_psnr_db(model: torch.nn.Module, xs: torch.Tensor, ys: torch.Tensor) -> float:
    """Mean over frames of the PSNR (dB) of ``model(x)`` against the clean frame, each frame with
    its own range (``mcnn.train.metrics.psnr``)."""
    from mcnn.train.metrics import psnr

    device = next(model.parameters()).device
    model.eval()
    values = []
    with torch.no_grad():
        for x, y in zip(xs, ys, strict=True):
            values.append(psnr(model(x[None].to(device)).cpu(), y[None]))
    return round(sum(values) / len(values), 3)


def _train_both(
    configs: dict[str, ModelConfig], s: DenoiserVsUnetSettings,
    progress: Callable[[str], None] | None,
) -> dict[str, Any]:
    from mcnn.bench.convergence import CachedPairs
    from mcnn.data.build import build_datasets
    from mcnn.train.metrics import psnr
    from mcnn.train.trainer import Trainer

    tmp = Path(tempfile.mkdtemp(prefix="denoiser-vs-unet-"))
    try:
        first = train_config(s, configs["denoiser"], "denoiser", tmp)
        train, val = build_datasets(first.data, s.seed)
        xs, ys = (torch.stack(t) for t in zip(*(val[i] for i in range(len(val))), strict=True))
        frozen = CachedPairs(val, {}, max_items=len(val))  # the same held-out frames for both
        shared = CachedPairs(train, {}, max_items=100_000)  # both networks see the same batches
        t0 = time.perf_counter()
        epochs = -(-s.train_steps * s.batch_size // len(shared)) + 1
        for epoch in range(epochs):  # simulated up front: train_s is the networks' time alone
            shared.set_epoch(epoch)
            for i in range(len(shared)):
                shared[i]
        shared.set_epoch(0)
        simulate_s = round(time.perf_counter() - t0, 2)
        result: dict[str, Any] = {
            "steps": s.train_steps, "frame_px": s.train_size_px, "batch_size": s.batch_size,
            "held_out_frames": len(frozen), "simulate_s": simulate_s,
            "input_psnr_db": round(sum(psnr(x[None], y[None]) for x, y in zip(xs, ys,
                                                                               strict=True))
                                   / len(xs), 3),
        }
        for name, cfg in configs.items():
            tc = train_config(s, cfg, name, tmp)
            trainer = Trainer(tc, shared, frozen, progress=False)
            t0 = time.perf_counter()
            trainer.fit()
            entry = {"psnr_db": held_out_psnr_db(trainer.model, xs, ys),
                     "train_s": round(time.perf_counter() - t0, 2)}
            result[name] = entry
            if progress is not None:
                progress(f"{name}: held-out PSNR {entry['psnr_db']:.2f} dB after "
                         f"{s.train_steps} steps ({entry['train_s']:.0f} s)")
        result["psnr_gain_db"] = round(result["denoiser"]["psnr_db"] - result["unet"]["psnr_db"], 3)
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_denoiser_vs_unet(
    s: DenoiserVsUnetSettings, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """The paired run (see the module docstring); returns the JSON-ready result."""
    from mcnn.device import select_device

    t_start = time.perf_counter()
    device = select_device(s.device)
    den = denoiser_config(s)
    unet = match_unet_width(den)
    configs = {"denoiser": den, "unet": unet}
    n = {k: trainable_parameters(c) for k, c in configs.items()}
    mismatch = abs(n["unet"] - n["denoiser"]) / n["denoiser"]
    if mismatch > s.param_tolerance:
        raise ValueError(f"width_scale={s.width_scale}: the closest U-Net has {n['unet']} "
                         f"parameters, {mismatch:.1%} from the denoiser's {n['denoiser']} "
                         f"(param_tolerance={s.param_tolerance}); use a larger width_scale")
    result: dict[str, Any] = {
        "benchmark": "denoiser-vs-unet", **environment(device),
        "settings": s.model_dump(mode="json"),
        "networks": {k: {"parameters": n[k], "config": c.model_dump(mode="json")}
                     for k, c in configs.items()},
        "parameter_mismatch": round(mismatch, 4),
        "method": "speed: forward under torch.inference_mode, channels_last fp32, the two networks "
        "timed interleaved in one process; speed_ratio = U-Net median ms / denoiser median ms "
        "(>= 1: the denoiser is at least as fast). quality: the same Trainer, steps, seed, batches "
        "and simulated low-dose STEM frames for both; PSNR per held-out frame (clean frame's "
        "range), averaged; psnr_gain_db = denoiser - U-Net.",
    }
    torch.manual_seed(s.seed)
    models = {k: MCNN(c).to(device, memory_format=torch.channels_last).eval()  # type: ignore[call-overload]
              for k, c in configs.items()}
    result["speed"] = _time_pair(models, den.in_channels, s, device)
    if progress is not None:
        for size, e in result["speed"].items():
            progress(f"{size}px: denoiser {e['denoiser']['ms_median']:.1f} ms, U-Net "
                     f"{e['unet']['ms_median']:.1f} ms, ratio {e['speed_ratio']:.2f}")
    del models
    result["training"] = _train_both(configs, s, progress) if s.train_steps > 0 else None
    result["wall_s"] = round(time.perf_counter() - t_start, 1)
    return result

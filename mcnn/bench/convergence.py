"""Convergence benchmark: MCNN variants against the plain U-Net with identical layers.

What makes the comparison fair:
- every run shares the data (the same simulated training examples, data seed 0, and one held-out
  validation set built once by ``build_datasets``), the budget and the optimiser (Adam, constant lr,
  no warm-up, no gradient clipping by default);
- a seed sets the initial weights and the batch order, identically for every variant: the trainer
  seeds torch right before it builds the network, and the network builds its side-output heads
  after (and apart from) the trunk, so the variants of a seed start from the same trunk weights.
  Each run's initial trunk is fingerprinted and any mismatch is listed in the summary
  (``initial_trunk_mismatches``; ``mcnn-feedback`` has other decoder widths and is not compared);
- a variant's figures are distributions over seeds (median, IQR, min-max), and "iterations to
  reach" is read off curves smoothed by a centred moving median (``mcnn.bench.summary``).

Per validation we record the MAE and the pure training time (seconds inside ``training_step``,
validation and data loading excluded). The side outputs' cost is also measured directly with
``training_step_ms`` on a synthetic batch, as a ratio to the U-Net measured in the same run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mcnn.bench.env import environment
from mcnn.bench.step_time import compare_training_steps
from mcnn.bench.summary import summarize_curves
from mcnn.data.protocol import set_epoch
from mcnn.device import select_device
from mcnn.models import ModelConfig
from mcnn.train.config import TrainConfig
from mcnn.train.trainer import Trainer
from mcnn.utils.atomic import atomic_write_text

log = logging.getLogger(__name__)

CSV_FIELDS = ("variant", "skip", "seed", "step", "val_mae", "train_time_s", "train_loss")

# variant -> (model overrides, branch schedule); "unet" is the baseline (no side outputs).
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "unet": ({"branches": 0}, {"kind": "constant"}),
    "mcnn-equal": ({}, {"kind": "constant"}),
    "mcnn-coarse_to_fine": ({}, {"kind": "coarse_to_fine"}),
    # equal weights fading linearly to the full-resolution output alone at the last step
    "mcnn-decay": ({}, {"kind": "linear", "end": [1.0, 0.0]}),
    "mcnn-feedback": ({"branch_feedback": True}, {"kind": "constant"}),
}
BASELINE = "unet"


SCALES: dict[str, dict[str, Any]] = {
    # fits ~25 minutes on 2 CPU cores for 3 variants x 2 skips x 5 seeds (the field defaults)
    "cpu": dict(size=64, depth=5, base_width=16, max_width=256, batch_size=8, lr=1e-3,
                steps=800, val_every=25, val_examples=32, step_time_seconds=3.0),
    # the paper's tutorial numbers; meant for a GPU. Simulating a 256 px example costs ~11 ms of
    # CPU, ~7x a GPU step's share, so all 16,000 examples a run sees (~8 GB) are cached for the
    # next runs.
    "paper": dict(size=256, depth=7, base_width=64, max_width=512, batch_size=8, lr=1e-3,
                  steps=2000, val_every=50, val_examples=64, step_time_seconds=5.0,
                  cache_data_mb=10240),
}


_BOTH_SKIPS: tuple[Literal["add", "concat"], ...] = ("add", "concat")


class ConvergenceSettings(BaseModel):
    """One benchmark: network shape, problem, budget, and the grid variants x skips x seeds.

    ``scale`` picks a preset (``SCALES``) whose values fill every field the config does not set;
    explicit fields always win.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    scale: Literal["cpu", "paper"] = Field(
        default="cpu", description="Preset for the fields not given: cpu (64 px, depth 5, 800 its) "
        "or paper (256 px, depth 7, width 64->512, 2000 its; for a GPU).")
    out: str = Field(default="runs/bench-convergence",
                     description="Output folder (curves.csv, convergence.png, summary.json).")
    size: int = Field(default=64, ge=8, le=4096, description="Image side (px).")
    depth: int = Field(default=5, ge=1, le=10, description="Stride-2 levels.")
    base_width: int = Field(default=16, ge=1, le=1024, description="Channels at full resolution.")
    max_width: int = Field(default=256, ge=1, le=4096, description="Channel cap.")
    kernel_size: int = Field(default=4, ge=2, le=7)
    branches: int | None = Field(default=None, ge=1, description="MCNN side outputs (None: depth-1).")
    batch_size: int = Field(default=8, ge=1, le=4096)
    lr: float = Field(default=1e-3, gt=0, le=1, description="Adam, constant.")
    grad_clip: float | None = Field(
        default=None, gt=0, description="Max gradient norm (None = off, the fair default: clipping "
        "touched the U-Net's steps three times as often as MCNN's).")
    steps: int = Field(default=800, ge=1, description="Iterations per run.")
    val_every: int = Field(default=25, ge=1, description="Validate every N iterations.")
    val_examples: int = Field(default=32, ge=1, description="Held-out validation examples.")
    examples_per_epoch: int = Field(default=2048, ge=1)
    noise_std: float = Field(default=0.01, ge=0)
    content: Literal["procedural", "bundled"] = Field(
        default="procedural", description="Ground-truth images: procedural or bundled photographs.")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], min_length=1,
                             description="Each seed: initial weights and batch order (default 0-4).")
    variants: list[str] = Field(
        default_factory=lambda: ["unet", "mcnn-equal", "mcnn-coarse_to_fine"], min_length=1,
        description=f"From {', '.join(VARIANTS)}.")
    skips: list[Literal["add", "concat"]] = Field(default_factory=lambda: list(_BOTH_SKIPS),
                                                  min_length=1)
    device: str = Field(default="auto", description="auto, cpu, cuda or cuda:N.")
    checkpoints: list[int] = Field(default_factory=lambda: [100, 500, 2000],
                                   description="Iterations at which to report the MAE.")
    levels: list[float] = Field(default_factory=lambda: [0.1, 0.07],
                                description="MAE levels to report iterations/seconds to reach.")
    smooth_points: int = Field(
        default=5, ge=1, le=99, description="Odd window (validations) of the centred moving median "
        "that 'iterations to reach' is read from; 1 = raw curve.")
    step_time_seconds: float = Field(default=3.0, ge=0, description="0 skips the step-time check.")
    cache_data_mb: int = Field(
        default=2048, ge=0, description="Keep simulated examples in memory for all runs, up to this."
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_from_scale(cls, data: Any) -> Any:
        if isinstance(data, dict):
            preset = SCALES.get(data.get("scale", "cpu"))
            if preset is not None:
                data = {**preset, **data}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ConvergenceSettings:
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown:
            raise ValueError(f"unknown variants {unknown}; choose from {sorted(VARIANTS)}")
        if self.max_width < self.base_width:
            raise ValueError(f"max_width={self.max_width} must be >= base_width={self.base_width}")
        if self.branches is not None and self.branches > self.depth:
            raise ValueError(f"branches={self.branches} must be <= depth={self.depth}")
        if self.size % 2**self.depth:
            raise ValueError(f"size={self.size} must be a multiple of 2**depth={2**self.depth}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds repeat: {self.seeds}")
        if self.smooth_points % 2 == 0:
            raise ValueError(f"smooth_points={self.smooth_points} must be odd (a centred window)")
        return self

    @property
    def mcnn_branches(self) -> int:
        return self.branches if self.branches is not None else max(self.depth - 1, 1)


def settings_for(scale: str, **overrides: Any) -> ConvergenceSettings:
    """The ``scale`` preset with ``overrides`` (None values ignored) on top."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose from {sorted(SCALES)}")
    data = {"scale": scale, **{k: v for k, v in overrides.items() if v is not None}}
    return ConvergenceSettings.model_validate(data)


def model_config(s: ConvergenceSettings, variant: str, skip: str) -> ModelConfig:
    model_over, _ = VARIANTS[variant]
    data = dict(depth=s.depth, base_width=s.base_width, max_width=s.max_width,
                kernel_size=s.kernel_size, skip=skip, branches=s.mcnn_branches, cell="conv")
    return ModelConfig.model_validate({**data, **model_over})


def train_config(
    s: ConvergenceSettings, variant: str, skip: str, seed: int, out_dir: Path
) -> TrainConfig:
    """The full training config of one run (data seed fixed at 0: every run sees the same data)."""
    _, schedule = VARIANTS[variant]
    return TrainConfig.model_validate({
        "name": f"{variant}-{skip}-seed{seed}",
        "out_dir": str(out_dir),
        "model": model_config(s, variant, skip).model_dump(),
        "loss": {"branch_schedule": schedule},
        "data": {"kind": "simulated", "simulator": {"name": "laplacian", "noise_std": s.noise_std},
                 "content": {"kind": s.content}, "size": s.size,
                 "examples_per_epoch": s.examples_per_epoch, "val_examples": s.val_examples,
                 "seed": 0},
        "optim": {"optimizer": "adam", "lr": s.lr, "schedule": "constant", "warmup_steps": 0,
                  "grad_clip": s.grad_clip},
        "train": {"steps": s.steps, "batch_size": s.batch_size, "val_every": s.val_every,
                  "checkpoint_every": s.steps, "seed": seed, "device": s.device,
                  "precision": "auto", "tensorboard": False, "sample_images": 0},
    })


class CachedPairs(torch.utils.data.Dataset):
    """Remembers each ``(epoch, index)`` example of a simulated dataset, so runs that share data
    do not pay for simulating it again. Single-process loading only (``num_workers=0``)."""

    def __init__(self, inner: Any, cache: dict, max_items: int) -> None:
        self.inner, self.cache, self.max_items = inner, cache, max_items
        self.in_channels = int(inner.in_channels)
        self.out_channels = int(inner.out_channels)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        set_epoch(self.inner, epoch)

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int):
        key = (self.epoch, int(index))
        item = self.cache.get(key)
        if item is None:
            item = self.inner[index]
            if len(self.cache) < self.max_items:
                self.cache[key] = item
        return item


class CurveTrainer(Trainer):
    """A Trainer that records ``(step, val_mae, train_time_s)`` at each validation."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.train_time_s = 0.0
        self.curve: list[dict[str, float]] = []

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        t0 = time.perf_counter()
        logs = super().training_step(x, y)  # ends in .item(): the device is synchronised
        self.train_time_s += time.perf_counter() - t0
        return logs

    def on_validation_end(self, step: int, metrics: dict[str, float]) -> None:
        self.curve.append({"step": step, "val_mae": metrics["val_mae"],
                           "train_time_s": round(self.train_time_s, 4),
                           "train_loss": metrics.get("train_loss", float("nan"))})


_BRANCH_HEAD = re.compile(r"^(stages\.\d+\.head|bottleneck_head)\.")


def trunk_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The network's state without its side-output heads (``stages.<i>.head.*``): what a U-Net
    and an MCNN with the same skip and widths have in common."""
    return {k: v for k, v in model.state_dict().items() if not _BRANCH_HEAD.match(k)}


def trunk_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of the trunk's names, shapes and values: equal fingerprints = identical trunks."""
    h = hashlib.sha256()
    for k, v in sorted(trunk_state(model).items()):
        t = v.detach().to("cpu").contiguous()
        h.update(f"{k}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def curves_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r[k] for k in CSV_FIELDS})
    return buf.getvalue()


def read_curves_csv(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="") as f:
        return [{**r, "seed": int(r["seed"]), "step": int(r["step"]),
                 "val_mae": float(r["val_mae"]), "train_time_s": float(r["train_time_s"]),
                 "train_loss": float(r["train_loss"])} for r in csv.DictReader(f)]


def _datasets(s: ConvergenceSettings, cache: dict) -> tuple[Any, Any]:
    """The shared training set (cached per ``(epoch, index)``) and the held-out validation set,
    both from ``build_datasets``; the validation set is simulated once and kept in memory, since
    every run validates on it dozens of times."""
    from mcnn.data.build import build_datasets

    cfg = train_config(s, s.variants[0], s.skips[0], s.seeds[0], Path("."))
    train, val = build_datasets(cfg.data, 0)
    x, y = train[0]
    item_bytes = (x.numel() + y.numel()) * x.element_size()
    max_items = s.cache_data_mb * 2**20 // max(item_bytes, 1)
    xs, ys = zip(*(val[i] for i in range(len(val))), strict=True)
    frozen_val = torch.utils.data.TensorDataset(torch.stack(xs), torch.stack(ys))
    return CachedPairs(train, cache, max_items), frozen_val


def measure_overhead(s: ConvergenceSettings, device: torch.device) -> dict[str, Any]:
    """Step time (ms) of each variant, measured interleaved with the U-Net of the same skip, and
    the ratio of its median to the U-Net's (``side_output_step_ratio``; 1.08 = 8 % slower)."""
    times: dict[str, dict[str, Any]] = {}
    ratio: dict[str, dict[str, float]] = {}
    variants = [BASELINE] + [v for v in s.variants if v != BASELINE]
    for skip in s.skips:
        configs = {v: model_config(s, v, skip) for v in variants}
        times[skip] = compare_training_steps(configs, BASELINE, s.size, s.batch_size, device,
                                             seconds=s.step_time_seconds)
        ratio[skip] = {v: e["ratio_to_baseline"] for v, e in times[skip].items() if v != BASELINE}
    return {"step_time_ms": times, "side_output_step_ratio": ratio}


def _title(s: dict[str, Any]) -> str:
    if not s:
        return ""
    return (f"scale={s['scale']}, {s['size']}px, depth {s['depth']}, width {s['base_width']}->"
            f"{s['max_width']}, batch {s['batch_size']}, lr {s['lr']:g}, {len(s['seeds'])} seeds")


def rank(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """All (variant, skip) pairs, best first, by median late MAE (mean of the last quarter of
    validations), with the median final MAE alongside."""
    table = [{"variant": v, "skip": k, "late_mae_median": e["late_mae"]["median"],
              "final_mae_median": e["final_mae"]["median"]}
             for k, per in results.items() for v, e in per.items()]
    return sorted(table, key=lambda r: (r["late_mae_median"] is None, r["late_mae_median"] or 0.0))


METHOD = (
    "Every variant of a seed starts from the same trunk weights and sees the same data and batch "
    "order; Adam with a constant lr, no gradient clipping unless grad_clip is set. Figures are "
    "over seeds: median, q25-q75 (IQR) and min-max. mae_at_step is the raw validation MAE of the "
    "last validation at or before that step. Iterations (and pure training seconds) to reach a "
    "level are read off each run's validation curve smoothed by a centred moving median over "
    "smooth_points validations (window truncated at the ends): the first validation whose "
    "smoothed MAE is <= the level; a run that never gets there ranks as +inf, so a median of None "
    "means half or more of the seeds never did. vs_baseline: ratio of medians to the U-Net's.")


def resummarize(
    out_dir: Path, levels: list[float] | None = None, smooth_points: int | None = None
) -> dict[str, Any]:
    """Rebuild ``summary.json``'s results and the plot from ``curves.csv`` (e.g. other levels or
    smoothing); the environment and step-time figures of the existing summary are kept."""
    import json

    from mcnn.bench.plot import plot_convergence

    out_dir = Path(out_dir)
    if not (out_dir / "curves.csv").is_file():
        raise FileNotFoundError(f"{out_dir / 'curves.csv'}: no such file")
    if smooth_points is not None and (smooth_points < 1 or smooth_points % 2 == 0):
        raise ValueError(f"smooth_points must be an odd number >= 1, got {smooth_points}")
    summary_path = out_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    s = summary.get("settings", {})
    if levels is not None:
        s["levels"] = levels
    if smooth_points is not None:
        s["smooth_points"] = smooth_points
    s.setdefault("smooth_points", 5)
    summary["settings"] = s
    rows = read_curves_csv(out_dir / "curves.csv")
    summary["method"] = METHOD
    summary["results"] = summarize_curves(rows, checkpoints=s.get("checkpoints", (100, 500, 2000)),
                                          levels=s.get("levels", (0.1, 0.07)), baseline=BASELINE,
                                          smooth=s["smooth_points"])
    summary.pop("ranking_by_final_mae", None)
    summary["ranking_by_late_mae"] = rank(summary["results"])
    plot_convergence(rows, out_dir / "convergence.png", title=_title(s))
    atomic_write_text(summary_path, json.dumps(summary, indent=2))
    return summary


def run_convergence(
    s: ConvergenceSettings,
    out_dir: Path | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train every (skip, seed, variant), write ``curves.csv``, ``convergence.png`` and
    ``summary.json`` into ``out_dir`` (default ``s.out``); returns the summary."""
    import json

    from mcnn.bench.plot import plot_convergence

    device = select_device(s.device)
    out_dir = Path(out_dir if out_dir is not None else s.out)
    s = s.model_copy(update={"device": device.type, "out": str(out_dir)})
    out_dir.mkdir(parents=True, exist_ok=True)
    runs_dir = out_dir / ".runs"
    cache: dict = {}
    train, val = _datasets(s, cache)
    rows: list[dict[str, Any]] = []
    mismatches: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    total = len(s.skips) * len(s.seeds) * len(s.variants)
    done = 0
    for skip in s.skips:
        for seed in s.seeds:
            reference: tuple[str, str] | None = None  # (variant, trunk fingerprint) of this seed
            for variant in s.variants:
                cfg = train_config(s, variant, skip, seed, runs_dir)
                shutil.rmtree(cfg.run_dir, ignore_errors=True)
                trainer = CurveTrainer(cfg, train, val, progress=False)
                if not cfg.model.branch_feedback:  # feedback widens the decoder: another trunk
                    fp = trunk_fingerprint(trainer.model)
                    if reference is None:
                        reference = (variant, fp)
                    elif fp != reference[1]:
                        mismatches.append({"skip": skip, "seed": seed, "variant": variant,
                                           "reference": reference[0]})
                        log.warning("%s skip=%s seed=%d starts from other trunk weights than %s",
                                    variant, skip, seed, reference[0])
                trainer.fit()
                shutil.rmtree(cfg.run_dir, ignore_errors=True)
                rows += [{"variant": variant, "skip": skip, "seed": seed, **r}
                         for r in trainer.curve]
                atomic_write_text(out_dir / "curves.csv", curves_csv(rows))
                done += 1
                last = trainer.curve[-1]
                msg = (f"[{done}/{total}] {variant} skip={skip} seed={seed}: val MAE "
                       f"{last['val_mae']:.4f} at step {last['step']}, "
                       f"{last['train_time_s']:.1f} s training")
                log.info(msg)
                if progress is not None:
                    progress(msg)
    shutil.rmtree(runs_dir, ignore_errors=True)
    train_wall_s = time.perf_counter() - t_start
    overhead = measure_overhead(s, device) if s.step_time_seconds > 0 else {}
    results = summarize_curves(rows, checkpoints=s.checkpoints, levels=s.levels, baseline=BASELINE,
                               smooth=s.smooth_points)
    summary = {
        "benchmark": "convergence",
        **environment(device),
        "settings": s.model_dump(mode="json"),
        "method": METHOD,
        "initial_trunk_mismatches": mismatches,
        "results": results,
        "ranking_by_late_mae": rank(results),
        **overhead,
        "wall_s": round(time.perf_counter() - t_start, 1),
        "train_wall_s": round(train_wall_s, 1),
    }
    plot_convergence(rows, out_dir / "convergence.png", title=_title(s.model_dump()))
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    return summary

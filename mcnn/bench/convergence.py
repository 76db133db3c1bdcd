"""Convergence benchmark: MCNN variants against the plain U-Net with identical layers.

Every run shares the data (same simulated examples, same fixed validation set), the budget and the
optimiser; a seed sets the initial weights and the batch order. Per validation we record the MAE and
the pure training time (seconds inside ``training_step``, validation and data loading excluded).
The side outputs' cost is also measured directly with ``training_step_ms`` on a synthetic batch.
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mcnn.bench.env import environment
from mcnn.bench.step_time import training_step_ms
from mcnn.bench.summary import summarize_curves
from mcnn.data.protocol import set_epoch
from mcnn.models import ModelConfig
from mcnn.train.config import TrainConfig
from mcnn.train.runtime import select_device
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


class ConvergenceSettings(BaseModel):
    """One benchmark: network shape, problem, budget, and the grid variants x skips x seeds."""

    model_config = ConfigDict(extra="forbid")

    scale: str = "custom"
    size: int = Field(default=64, ge=8, le=4096, description="Image side (px).")
    depth: int = Field(default=5, ge=1, le=10)
    base_width: int = Field(default=16, ge=1, le=1024)
    max_width: int = Field(default=256, ge=1, le=4096)
    kernel_size: int = Field(default=4, ge=2, le=7)
    branches: int | None = Field(default=None, ge=1, description="MCNN side outputs (None: depth-1).")
    batch_size: int = Field(default=8, ge=1, le=4096)
    lr: float = Field(default=1e-3, gt=0, le=1)
    grad_clip: float | None = Field(default=1.0, gt=0)
    steps: int = Field(default=500, ge=1)
    val_every: int = Field(default=25, ge=1)
    val_examples: int = Field(default=32, ge=1)
    examples_per_epoch: int = Field(default=2048, ge=1)
    noise_std: float = Field(default=0.01, ge=0)
    content: Literal["procedural", "bundled"] = "procedural"
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    variants: list[str] = Field(
        default_factory=lambda: ["unet", "mcnn-equal", "mcnn-coarse_to_fine"], min_length=1
    )
    skips: list[Literal["add", "concat"]] = Field(default_factory=lambda: ["add", "concat"])
    device: str = "auto"
    checkpoints: list[int] = Field(default_factory=lambda: [100, 500, 2000])
    levels: list[float] = Field(default_factory=lambda: [0.1, 0.07])
    step_time_seconds: float = Field(default=3.0, ge=0, description="0 skips the step-time check.")
    cache_data_mb: int = Field(
        default=2048, ge=0, description="Keep simulated examples in memory for all runs, up to this."
    )

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
        return self

    @property
    def mcnn_branches(self) -> int:
        return self.branches if self.branches is not None else max(self.depth - 1, 1)


SCALES: dict[str, dict[str, Any]] = {
    # the paper's tutorial numbers; meant for a GPU
    "paper": dict(size=256, depth=7, base_width=64, max_width=512, batch_size=8, lr=1e-3,
                  steps=2000, val_every=50, val_examples=64, step_time_seconds=5.0),
    # fits ~15 minutes on 2 CPU cores for 3 variants x 2 skips x 3 seeds
    "cpu": dict(size=64, depth=5, base_width=16, max_width=256, batch_size=8, lr=1e-3,
                steps=800, val_every=25, val_examples=32, step_time_seconds=3.0),
}


def settings_for(scale: str, **overrides: Any) -> ConvergenceSettings:
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose from {sorted(SCALES)}")
    data = {"scale": scale, **SCALES[scale]}
    data.update({k: v for k, v in overrides.items() if v is not None})
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
    from mcnn.data.build import build_datasets

    cfg = train_config(s, s.variants[0], s.skips[0], s.seeds[0], Path("."))
    train, val = build_datasets(cfg.data, 0)
    x, y = train[0]
    item_bytes = (x.numel() + y.numel()) * x.element_size()
    max_items = s.cache_data_mb * 2**20 // max(item_bytes, 1)
    return CachedPairs(train, cache, max_items), val


def measure_overhead(s: ConvergenceSettings, device: torch.device) -> dict[str, Any]:
    """Step time (ms) of each variant and its overhead over the U-Net with the same skip (%)."""
    times: dict[str, dict[str, Any]] = {}
    overhead: dict[str, dict[str, float]] = {}
    variants = [BASELINE] + [v for v in s.variants if v != BASELINE]
    for skip in s.skips:
        times[skip], overhead[skip] = {}, {}
        for v in variants:
            times[skip][v] = training_step_ms(model_config(s, v, skip), s.size, s.batch_size,
                                              device, seconds=s.step_time_seconds)
            if v != BASELINE:
                base = times[skip][BASELINE]["ms_median"]
                overhead[skip][v] = round(100 * (times[skip][v]["ms_median"] / base - 1), 2)
    return {"step_time_ms": times, "side_output_overhead_pct": overhead}


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


def resummarize(out_dir: Path, levels: list[float] | None = None) -> dict[str, Any]:
    """Rebuild ``summary.json``'s results and the plot from ``curves.csv`` (e.g. other levels);
    the environment and step-time figures of the existing summary are kept."""
    import json

    from mcnn.bench.plot import plot_convergence

    out_dir = Path(out_dir)
    if not (out_dir / "curves.csv").is_file():
        raise FileNotFoundError(f"{out_dir / 'curves.csv'}: no such file")
    summary_path = out_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    s = summary.get("settings", {})
    if levels is not None:
        s["levels"] = levels
        summary["settings"] = s
    rows = read_curves_csv(out_dir / "curves.csv")
    summary["results"] = summarize_curves(rows, checkpoints=s.get("checkpoints", (100, 500, 2000)),
                                          levels=s.get("levels", (0.1, 0.07)), baseline=BASELINE)
    summary.pop("ranking_by_final_mae", None)
    summary["ranking_by_late_mae"] = rank(summary["results"])
    plot_convergence(rows, out_dir / "convergence.png", title=_title(s))
    atomic_write_text(summary_path, json.dumps(summary, indent=2))
    return summary


def run_convergence(
    s: ConvergenceSettings,
    out_dir: Path,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train every (skip, seed, variant), write ``curves.csv``, ``convergence.png`` and
    ``summary.json`` into ``out_dir``; returns the summary."""
    from mcnn.bench.plot import plot_convergence

    device = select_device(s.device)
    s = s.model_copy(update={"device": device.type})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs_dir = out_dir / ".runs"
    cache: dict = {}
    train, val = _datasets(s, cache)
    rows: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    total = len(s.skips) * len(s.seeds) * len(s.variants)
    done = 0
    for skip in s.skips:
        for seed in s.seeds:
            for variant in s.variants:
                cfg = train_config(s, variant, skip, seed, runs_dir)
                shutil.rmtree(cfg.run_dir, ignore_errors=True)
                trainer = CurveTrainer(cfg, train, val, progress=False)
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
    results = summarize_curves(rows, checkpoints=s.checkpoints, levels=s.levels, baseline=BASELINE)
    summary = {
        "benchmark": "convergence",
        **environment(device),
        "settings": s.model_dump(mode="json"),
        "results": results,
        "ranking_by_late_mae": rank(results),
        **overhead,
        "wall_s": round(time.perf_counter() - t_start, 1),
        "train_wall_s": round(train_wall_s, 1),
    }
    plot_convergence(rows, out_dir / "convergence.png", title=_title(s.model_dump()))
    import json

    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    return summary

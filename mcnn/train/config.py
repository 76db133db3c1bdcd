"""The whole training run as one validated document: model, loss, data, optimiser and loop settings.

Saved as JSON next to every checkpoint, so a run can be rebuilt and resumed from its folder alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mcnn.data.config import DataConfig
from mcnn.losses.config import LossConfig
from mcnn.models.config import ModelConfig


class OptimConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = Field(default=1e-3, gt=0, le=1.0)
    weight_decay: float = Field(default=0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: Literal["constant", "cosine", "step"] = Field(
        default="cosine", description="Learning-rate schedule after warm-up."
    )
    warmup_steps: int = Field(default=0, ge=0)
    min_lr_ratio: float = Field(default=0.01, ge=0, le=1, description="cosine: final lr / lr.")
    step_every: int = Field(default=1000, ge=1, description="step: decay period (steps).")
    step_gamma: float = Field(default=0.5, gt=0, le=1, description="step: decay factor.")
    grad_clip: float | None = Field(default=1.0, gt=0, description="Max gradient norm (None = off).")


class LoopConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    steps: int = Field(default=2000, ge=1, description="Optimiser steps (iterations).")
    batch_size: int = Field(default=8, ge=1, le=4096, description="Per process.")
    val_every: int = Field(default=200, ge=1, description="Validate every N steps (and at the end).")
    val_batch_size: int = Field(default=16, ge=1)
    checkpoint_every: int = Field(default=500, ge=1)
    log_every: int = Field(default=20, ge=1, description="TensorBoard scalars every N steps.")
    progress_every_s: float = Field(
        default=10.0, gt=0, le=3600,
        description="Log a progress line (step, it/s, loss, lr, ETA) at least this often (s).",
    )
    seed: int = 0
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto", description="auto: bf16 autocast on CUDA, fp32 elsewhere."
    )
    channels_last: bool | None = Field(default=None, description="None: on for CUDA only.")
    compile: bool = Field(default=False, description="torch.compile the network.")
    num_workers: int | None = Field(
        default=None, ge=0, le=64,
        description="DataLoader worker processes; None: 0 on CPU, min(8, CPUs - 2) on CUDA.")
    tensorboard: bool = True
    sample_images: int = Field(default=4, ge=0, le=32, description="Validation images logged.")
    init_weights: str | None = Field(
        default=None, min_length=1,
        description="Start from these weights (a checkpoint/run folder or a model.safetensors; "
        "the same architecture) with a fresh optimiser and schedule: stage-2 fine-tuning.",
    )


class TrainConfig(BaseModel):
    """Everything ``mcnn-train`` needs. Load with ``mcnn.train.config_io.load_config``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    version: Literal[1] = 1
    name: str = Field(
        default="mcnn", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._+=@-]+$",
        description="Run folder name inside out_dir: letters, digits and . _ + = @ - (no / or ..).",
    )
    out_dir: Path = Field(default=Path("runs"), description="Runs are written to out_dir/name.")
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    data: DataConfig
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: LoopConfig = Field(default_factory=LoopConfig)

    @field_validator("name")
    @classmethod
    def _stays_inside_out_dir(cls, name: str) -> str:
        if name in (".", ".."):
            raise ValueError(f"{name!r} is not a folder name; the run must stay inside out_dir")
        return name

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.train.checkpoint_every > self.train.steps and self.train.steps > 1:
            self.train.checkpoint_every = self.train.steps
        sched = self.loss.branch_schedule
        n = self.model.branches + 1
        for name in ("start", "end"):
            w = getattr(sched, name)
            if w is not None and len(w) > n:
                raise ValueError(
                    f"loss.branch_schedule.{name} has {len(w)} weights but model.branches="
                    f"{self.model.branches} gives {n} outputs"
                )
        self._tie_front_physics()
        return self

    def _tie_front_physics(self) -> None:
        """``model.tie_front`` takes its physics from the defocus simulator: unset fields are
        filled, set ones must agree (a front with other physics than the data is wrong silently)."""
        front = self.model.tie_front
        sim = getattr(self.data, "simulator", None)
        if front is None or sim is None or getattr(sim, "name", None) != "defocus":
            return
        physics = {"defocus_um": list(sim.defocus_um), "wavelength_um": sim.wavelength_um,
                   "pixel_size_um": sim.pixel_size_um, "medium_index": sim.medium_index}
        for key, value in physics.items():
            given = getattr(front, key)
            if given is None:
                setattr(front, key, value)
            elif given != value:
                raise ValueError(f"model.tie_front.{key}={given} but data.simulator.{key}="
                                 f"{value}; leave it unset to take the simulator's")
        if len(physics["defocus_um"]) != self.model.in_channels:
            raise ValueError(f"model.tie_front: data.simulator.defocus_um has "
                             f"{len(physics['defocus_um'])} planes but model.in_channels="
                             f"{self.model.in_channels}")

    @property
    def run_dir(self) -> Path:
        return self.out_dir / self.name

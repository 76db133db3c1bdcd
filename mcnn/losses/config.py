"""Validated loss settings: the multi-scale MAE and its branch-weight schedule, plus optional extras."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BranchScheduleConfig(BaseModel):
    """How the weights of the outputs ``[full, 1/2, 1/4, ...]`` change over training.

    constant: ``start`` all along. linear: ``start`` -> ``end`` between ``begin_step`` and
    ``end_step``. coarse_to_fine: the paper's curriculum, coarse outputs weighted most at first and
    only the full-resolution output at the end (``start``/``end`` are filled in when left empty).
    Weights are given for ``[full, branch 1, branch 2, ...]``; missing entries repeat the last one.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: Literal["constant", "linear", "coarse_to_fine"] = "constant"
    start: list[float] | None = Field(default=None, description="Weights at begin_step (equal if None).")
    end: list[float] | None = Field(default=None, description="Weights at end_step.")
    begin_step: int = Field(default=0, ge=0)
    end_step: int | None = Field(
        default=None, ge=1, description="Step where the end weights are reached (default: last step)."
    )

    @model_validator(mode="after")
    def _weights(self) -> BranchScheduleConfig:
        for name in ("start", "end"):
            w = getattr(self, name)
            if w is not None and (len(w) == 0 or any(v < 0 for v in w)):
                raise ValueError(f"{name} must be a non-empty list of weights >= 0, got {w}")
        if self.end_step is not None and self.end_step <= self.begin_step:
            raise ValueError(
                f"end_step={self.end_step} must be after begin_step={self.begin_step}"
            )
        return self


class LossConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    branch_schedule: BranchScheduleConfig = Field(default_factory=BranchScheduleConfig)
    ssim_weight: float = Field(default=0.0, ge=0.0, description="Weight of a (1 - SSIM) term.")
    ms_ssim: bool = Field(default=False, description="Use MS-SSIM instead of SSIM for that term.")
    adversarial_weight: float = Field(
        default=0.0, ge=0.0, description="Weight of a PatchGAN adversarial term (0 = off)."
    )
    discriminator_width: int = Field(default=64, ge=4, le=512)
    discriminator_layers: int = Field(default=3, ge=1, le=6)

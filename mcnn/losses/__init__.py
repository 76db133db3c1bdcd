"""Losses: one small module each."""

from mcnn.losses.adversarial import (
    PatchDiscriminator,
    discriminator_loss,
    generator_adversarial_loss,
)
from mcnn.losses.config import BranchScheduleConfig, LossConfig
from mcnn.losses.multiscale import BranchWeightSchedule, MultiScaleL1Loss, area_reduce
from mcnn.losses.ssim import SSIMLoss

__all__ = [
    "BranchScheduleConfig",
    "BranchWeightSchedule",
    "LossConfig",
    "MultiScaleL1Loss",
    "PatchDiscriminator",
    "SSIMLoss",
    "area_reduce",
    "discriminator_loss",
    "generator_adversarial_loss",
]

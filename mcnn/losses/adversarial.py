"""Adversarial term against blur: a PatchGAN discriminator judging (input, output) patches.

Least-squares GAN objectives: stable, and their values read as mean squared patch errors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN: sees the network input beside a real or predicted target."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 64, layers: int = 3) -> None:
        super().__init__()
        self.in_channels = in_channels
        c = in_channels + out_channels
        mods: list[nn.Module] = []
        w = width
        for i in range(layers):
            mods += [nn.Conv2d(c, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            if i > 0:
                mods.insert(-1, nn.InstanceNorm2d(w, affine=True))
            c, w = w, min(w * 2, 512)
        mods += [nn.Conv2d(c, 1, 3, padding=1)]
        self.net = nn.Sequential(*mods)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        if condition.shape[-2:] != image.shape[-2:]:
            condition = F.interpolate(condition, size=image.shape[-2:], mode="bilinear")
        return self.net(torch.cat([condition, image], dim=1))


def generator_adversarial_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    return ((fake_scores - 1) ** 2).mean()


def discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    return 0.5 * (((real_scores - 1) ** 2).mean() + (fake_scores**2).mean())

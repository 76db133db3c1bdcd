"""The paper's tutorial problem: recover a phase map from its noisy discrete Laplacian.

``input = L * phase + n`` with ``L`` the isotropic 9-point stencil ``[[1, 2, 1], [2, -12, 2],
[1, 2, 1]]`` (equal to 4 * the unit-spacing Laplacian for smooth fields) and ``n`` white Gaussian
noise. Borders use *replicate* padding (a zero normal derivative, like a field that continues flat
past the edge), so a constant phase gives exactly zero input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mcnn.physics.base import ContentSource, Simulator
from mcnn.physics.config import LaplacianConfig
from mcnn.physics.noise import read_noise

STENCIL_9PT = torch.tensor([[1.0, 2.0, 1.0], [2.0, -12.0, 2.0], [1.0, 2.0, 1.0]])


def laplacian_9pt(x: torch.Tensor) -> torch.Tensor:
    """Apply the 9-point stencil to every channel of ``(B, C, H, W)`` with replicate padding."""
    b, c, h, w = x.shape
    y = F.pad(x.reshape(b * c, 1, h, w), (1, 1, 1, 1), mode="replicate")
    return F.conv2d(y, STENCIL_9PT.to(x).view(1, 1, 3, 3)).reshape(b, c, h, w)


class LaplacianPhaseSimulator(Simulator):
    """Pairs ``(noisy 9-point Laplacian of the phase, phase)``; in = out = 1 channel, scale 1."""

    in_channels = 1
    out_channels = 1
    scale = 1

    def __init__(self, config: LaplacianConfig | None = None) -> None:
        super().__init__()
        self.config = config or LaplacianConfig()

    def forward(self, phase: torch.Tensor) -> torch.Tensor:
        """The noiseless measurement ``L * phase``."""
        return laplacian_9pt(phase)

    def sample(
        self,
        batch: int,
        size: tuple[int, int],
        generator: torch.Generator,
        content: ContentSource,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        phase = content.sample(batch, size, generator, channels=1) * self.config.phase_scale
        return read_noise(self(phase), self.config.noise_std, generator), phase

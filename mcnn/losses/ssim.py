"""(1 - SSIM) loss term, computed by torchmetrics' maintained SSIM / MS-SSIM implementation."""

from __future__ import annotations

import torch
from torch import nn


class SSIMLoss(nn.Module):
    def __init__(self, multiscale: bool = False) -> None:
        super().__init__()
        self.multiscale = multiscale

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        from torchmetrics.functional.image import (
            multiscale_structural_similarity_index_measure as ms_ssim,
        )
        from torchmetrics.functional.image import structural_similarity_index_measure as ssim

        lo = torch.minimum(target.amin(), output.detach().amin())
        hi = torch.maximum(target.amax(), output.detach().amax())
        data_range = float((hi - lo).clamp_min(1e-6))
        fn = ms_ssim if self.multiscale else ssim
        value = fn(output.float(), target.float(), data_range=data_range)
        assert isinstance(value, torch.Tensor)  # a tuple only when asked for the full image
        return 1.0 - value

"""Validation metrics on ``(B, C, H, W)`` tensors: MAE, PSNR and SSIM.

PSNR and SSIM need a data range; it is taken from the target (max - min over the batch), which suits
phase maps and normalised images alike and is stated in the metrics CSV header.
"""

from __future__ import annotations

import torch


def mae(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float((pred.float() - target.float()).abs().mean())


def data_range(target: torch.Tensor) -> float:
    return float((target.amax() - target.amin()).clamp_min(1e-8))


def psnr(pred: torch.Tensor, target: torch.Tensor, value_range: float | None = None) -> float:
    r = value_range or data_range(target)
    mse = float(((pred.float() - target.float()) ** 2).mean())
    return float("inf") if mse == 0 else 10.0 * torch.log10(torch.tensor(r * r / mse)).item()


def ssim(pred: torch.Tensor, target: torch.Tensor, value_range: float | None = None) -> float:
    from torchmetrics.functional.image import structural_similarity_index_measure

    r = value_range or data_range(target)
    small = min(pred.shape[-2:])
    kernel = 11 if small >= 11 else (small - 1) | 1
    return float(
        structural_similarity_index_measure(
            pred.float(), target.float(), data_range=r, kernel_size=kernel
        )
    )


def all_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    r = data_range(target)
    return {"mae": mae(pred, target), "psnr": psnr(pred, target, r), "ssim": ssim(pred, target, r)}

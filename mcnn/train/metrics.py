"""Validation metrics on ``(B, C, H, W)`` tensors: MAE, PSNR and SSIM, per output channel.

Channels are never pooled: phase and amplitude (or R, G, B) have different ranges and meanings, and
an easy channel would hide a poor one. Each channel ``k`` gets ``mae_c{k}``, ``psnr_c{k}`` and
``ssim_c{k}``; ``mae``, ``psnr`` and ``ssim`` are the means over channels. PSNR and SSIM of channel
``k`` use that channel's target range (max - min over the batch), reported as ``psnr_range_c{k}``;
a constant channel uses a range of 1.
"""

from __future__ import annotations

import torch


def mae(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float((pred.float() - target.float()).abs().mean())


def data_range(target: torch.Tensor) -> float:
    """max - min of ``target``; 1.0 for a constant target (so PSNR stays finite and comparable)."""
    r = float(target.amax() - target.amin())
    return r if r > 1e-12 else 1.0


def psnr(pred: torch.Tensor, target: torch.Tensor, value_range: float | None = None) -> float:
    r = value_range or data_range(target)
    mse = float(((pred.float() - target.float()) ** 2).mean())
    return float("inf") if mse == 0 else 10.0 * torch.log10(torch.tensor(r * r / mse)).item()


def ssim(pred: torch.Tensor, target: torch.Tensor, value_range: float | None = None) -> float:
    from torchmetrics.functional.image import structural_similarity_index_measure

    r = value_range or data_range(target)
    small = min(pred.shape[-2:])
    kernel = 11 if small >= 11 else (small - 1) | 1
    value = structural_similarity_index_measure(
        pred.float(), target.float(), data_range=r, kernel_size=kernel
    )
    assert isinstance(value, torch.Tensor)  # a tuple only when asked for the full map
    return float(value)


def metric_names(channels: int) -> list[str]:
    """The keys ``all_metrics`` returns for ``channels`` output channels, in a stable order."""
    names = ["mae", "psnr", "ssim"]
    for k in range(channels):
        names += [f"mae_c{k}", f"psnr_c{k}", f"ssim_c{k}", f"psnr_range_c{k}"]
    return names


def all_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Per-channel MAE / PSNR / SSIM of ``(B, C, H, W)`` tensors and their means over channels."""
    out: dict[str, float] = {}
    per: dict[str, list[float]] = {"mae": [], "psnr": [], "ssim": []}
    for k in range(target.shape[1]):
        p, t = pred[:, k : k + 1], target[:, k : k + 1]
        r = data_range(t)
        values = {"mae": mae(p, t), "psnr": psnr(p, t, r), "ssim": ssim(p, t, r)}
        for name, v in values.items():
            out[f"{name}_c{k}"] = v
            per[name].append(v)
        out[f"psnr_range_c{k}"] = r
    means = {name: sum(v) / len(v) for name, v in per.items()}
    return {**means, **{k: out[k] for k in metric_names(target.shape[1]) if k in out}}

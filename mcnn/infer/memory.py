"""How much memory a forward pass needs, and how large a tile fits a budget.

Why an estimate and not a trial run: an out-of-memory error on a 2560x2160 frame costs seconds and
can leave a CUDA allocator fragmented; counting activations from the config is instant. The count
is of the tensors alive at the widest point of an inference pass (every encoder skip, plus the
finest decoder stage's input, upsampled and merged tensors), times a safety factor for
convolution workspaces; it errs on the high side.
"""

from __future__ import annotations

import logging
import os

import torch

from mcnn.models import ModelConfig

log = logging.getLogger(__name__)

SAFETY_FACTOR = 1.5
CPU_FALLBACK_BUDGET_BYTES = 4 * 2**30
MPS_BUDGET_BYTES = 4 * 2**30


def estimate_inference_bytes(
    config: ModelConfig, height: int, width: int, batch: int = 1, bytes_per_value: int = 4
) -> int:
    """Peak activation bytes for ``batch`` frames of ``height x width`` input pixels."""
    m = config.size_multiple
    pixels = (-(-height // m) * m) * (-(-width // m) * m)
    lowpass = (5 if config.lowpass is not None else 1) * config.in_channels
    skips = sum(config.width(level) * pixels / 4**level for level in range(config.depth + 1))
    decoder_peak = 0.0
    levels = list(range(config.depth - 1, -1, -1)) + [-1] * (config.output_scale.bit_length() - 1)
    for i, level in enumerate(levels):
        stage_pixels = pixels / 4 ** max(level, 0) * 4 ** max(i - config.depth + 1, 0)
        cout = config.width(max(level, 0))
        merged = 2 * cout if level >= 0 and config.skip == "concat" else cout
        decoder_peak = max(decoder_peak, (cout + merged + config.out_channels) * stage_pixels)
    io = (config.in_channels + lowpass) * pixels + config.out_channels * pixels * config.output_scale**2
    values = (skips + decoder_peak + io) * batch * SAFETY_FACTOR
    return int(values * bytes_per_value)


def memory_budget_bytes(device: torch.device, fraction: float = 0.6) -> int:
    """What one forward pass may use: a fraction of free CUDA memory, or of available RAM."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * fraction)
    if device.type == "mps":
        return MPS_BUDGET_BYTES
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return CPU_FALLBACK_BUDGET_BYTES
    return int(min(available * fraction, 4 * CPU_FALLBACK_BUDGET_BYTES))


def choose_tile_size(
    config: ModelConfig, budget_bytes: int, tile_batch: int, overlap: int, largest: int = 4096
) -> int:
    """The largest tile (a multiple of ``2**depth``) whose ``tile_batch`` tiles fit the budget.

    Never smaller than ``2 * overlap + 2**depth`` (smaller tiles would be all overlap); if even
    that does not fit, it is used anyway and a warning says so.
    """
    m = config.size_multiple
    smallest = -(-(2 * overlap + m) // m) * m
    size = max(largest // m * m, smallest)
    while size > smallest and estimate_inference_bytes(config, size, size, tile_batch) > budget_bytes:
        size -= m
    if estimate_inference_bytes(config, size, size, tile_batch) > budget_bytes:
        log.warning(
            "even %dx%d tiles (overlap %d) need ~%.0f MiB, over the %.0f MiB budget",
            size, size, overlap, estimate_inference_bytes(config, size, size, tile_batch) / 2**20,
            budget_bytes / 2**20,
        )
    return size

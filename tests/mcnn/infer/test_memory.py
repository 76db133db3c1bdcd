"""Memory estimate: grows with pixels and width, and chosen tiles fit the budget."""

from __future__ import annotations

from mcnn.infer.memory import choose_tile_size, estimate_inference_bytes
from mcnn.models import ModelConfig


def test_estimate_scales_with_pixels_batch_and_output_scale():
    cfg = ModelConfig(depth=5, base_width=32)
    one = estimate_inference_bytes(cfg, 1024, 1024)
    assert 4 * one * 0.95 < estimate_inference_bytes(cfg, 2048, 2048) < 4 * one * 1.05
    assert estimate_inference_bytes(cfg, 1024, 1024, batch=3) == 3 * one
    x2 = ModelConfig(depth=5, base_width=32, output_scale=2)
    assert estimate_inference_bytes(x2, 1024, 1024) > one
    # the full-resolution skip + merge alone is >= 3 * 32 channels * 4 bytes per pixel
    assert one > 3 * 32 * 4 * 1024 * 1024


def test_chosen_tile_fits_the_budget_and_the_size_multiple():
    cfg = ModelConfig(depth=5, base_width=32)
    budget = 2 * 2**30
    tile = choose_tile_size(cfg, budget, tile_batch=4, overlap=64)
    assert tile % 32 == 0 and estimate_inference_bytes(cfg, tile, tile, 4) <= budget
    assert estimate_inference_bytes(cfg, tile + 32, tile + 32, 4) > budget
    assert choose_tile_size(cfg, 1, tile_batch=1, overlap=64) == 160  # floor: 2*overlap + 32

"""Tile layout and blending: full coverage, aligned origins, exact coordinate mapping, no seams."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mcnn.infer.tiling import blend_weight, plan_tiles, tile_spans, tiled_apply


@pytest.mark.parametrize("length", [1, 7, 64, 65, 127, 128, 129, 1000, 1013, 2160, 2560])
@pytest.mark.parametrize(("tile", "overlap", "multiple"), [(64, 16, 8), (256, 64, 32), (96, 40, 4)])
def test_spans_cover_the_frame_with_aligned_starts_and_enough_overlap(length, tile, overlap, multiple):
    spans = tile_spans(length, tile, overlap, multiple)
    assert spans[0][0] == 0 and spans[-1][1] == length
    for (a0, a1), (b0, _) in zip(spans, spans[1:], strict=False):
        assert b0 % multiple == 0 and a0 < b0 < a1  # aligned, advancing, overlapping
        assert a1 - b0 >= min(overlap, length)
    for s0, s1 in spans[:-1]:
        assert s1 - s0 == tile
    assert spans[-1][1] - spans[-1][0] < tile + multiple


def test_spans_reject_tiles_off_the_size_multiple():
    with pytest.raises(ValueError, match="multiple of 8"):
        tile_spans(100, 60, 8, 8)


def test_blend_weight_is_zero_at_outer_quarter_and_one_inside():
    w = blend_weight(64, 16, 16)
    assert w[:4].max() < 1e-5 and w[-4:].max() < 1e-5
    assert torch.all(w[12:52] == 1) and torch.all(w > 0)
    assert torch.all(w[:16].diff() >= 0) and torch.all(w[-16:].diff() <= 0)


def test_plan_records_overlap_with_each_neighbour():
    tiles = plan_tiles(100, 130, 64, 16, 8)
    first, last = tiles[0], tiles[-1]
    assert (first.top, first.left) == (0, 0) and first.bottom > 0 and first.right > 0
    assert (last.bottom, last.right) == (0, 0) and (last.r1, last.c1) == (100, 130)


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_pointwise_function_is_reproduced_exactly_at_every_scale(scale):
    """A per-pixel function has no context to lose: tiles must map to exactly s-times coordinates."""
    x = torch.rand(2, 3, 101, 77)

    def fn(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t[:, :2] * 2 - t[:, 2:], scale_factor=scale, mode="nearest")

    y = tiled_apply(fn, x, tile=32, overlap=8, multiple=8, scale=scale, out_channels=2, batch=3)
    torch.testing.assert_close(y, fn(x), rtol=0, atol=1e-6)


def test_constant_frame_stays_constant_through_blending():
    x = torch.full((1, 1, 90, 200), 0.25)
    y = tiled_apply(lambda t: t, x, tile=48, overlap=20, multiple=4, scale=1, out_channels=1)
    assert torch.allclose(y, x, atol=1e-7)

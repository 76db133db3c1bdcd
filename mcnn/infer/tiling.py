"""Tiled inference: frames larger than memory allows, processed in overlapping tiles and blended.

Why it matches untiled inference:

* Tile origins sit on the network's size multiple (``2**depth``), so every tile sees the same
  stride-2 sampling grid as the whole frame; tiles touching the frame's right/bottom edge end
  exactly where the frame ends, so they get the same edge padding the whole frame gets.
* What differs is only the context near a tile's *inner* edges. In each overlap band the tile
  whose edge is near gets weight 0 on the outer quarter of the band (where its output is least
  trustworthy), a raised-cosine ramp over the middle half and 1 on the inner quarter; the sum of
  weights is divided out, so the blend is seamless and a constant frame stays constant.

Coordinates: tiles are chosen in input pixels and map to ``s``-times larger output windows for
``s = output_scale``. Layout ``(N, C, H, W)`` float32 throughout.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Tile:
    """One input window ``[r0, r1) x [c0, c1)`` and the overlap (input px) shared with each side."""

    r0: int
    r1: int
    c0: int
    c1: int
    top: int
    bottom: int
    left: int
    right: int


def tile_spans(length: int, tile: int, overlap: int, multiple: int) -> list[tuple[int, int]]:
    """``(start, stop)`` spans covering ``[0, length)`` with starts on multiples of ``multiple``.

    Neighbours overlap by at least ``overlap`` (rounded so the step is a multiple); the last span
    ends at ``length`` and may be up to ``multiple - 1`` longer than ``tile``.
    """
    if tile < multiple or tile % multiple:
        raise ValueError(f"tile={tile} must be a positive multiple of {multiple}")
    if length <= tile:
        return [(0, length)]
    step = max((tile - overlap) // multiple * multiple, multiple)
    last = (length - tile) // multiple * multiple
    starts = list(range(0, last, step)) + [last]
    return [(s, s + tile) for s in starts[:-1]] + [(last, length)]


def plan_tiles(
    height: int, width: int, tile: int, overlap: int, multiple: int
) -> list[Tile]:
    """Every tile of an ``height x width`` frame, row-major, with its overlaps to its neighbours."""
    rows = tile_spans(height, tile, overlap, multiple)
    cols = tile_spans(width, tile, overlap, multiple)
    tiles = []
    for i, (r0, r1) in enumerate(rows):
        top = rows[i - 1][1] - r0 if i > 0 else 0
        bottom = r1 - rows[i + 1][0] if i + 1 < len(rows) else 0
        for j, (c0, c1) in enumerate(cols):
            left = cols[j - 1][1] - c0 if j > 0 else 0
            right = c1 - cols[j + 1][0] if j + 1 < len(cols) else 0
            tiles.append(Tile(r0, r1, c0, c1, top, bottom, left, right))
    return tiles


def _edge_ramp(band: int) -> torch.Tensor:
    """Weights rising from 0 to 1 across an overlap band of ``band`` output pixels."""
    t = (torch.arange(band, dtype=torch.float64) + 0.5) / band
    # 0 on the outer quarter, raised cosine over the middle half, 1 on the inner quarter
    u = ((t - 0.25) / 0.5).clamp(0.0, 1.0)
    ramp = 0.5 - 0.5 * torch.cos(math.pi * u)
    return ramp.clamp_min(1e-6).float()  # never exactly 0: every pixel keeps some weight


def blend_weight(size: int, lo: int, hi: int) -> torch.Tensor:
    """1-D weights for a tile ``size`` output px long with overlap bands ``lo``/``hi`` at its ends."""
    w = torch.ones(size, dtype=torch.float32)
    if lo > 0:
        w[:lo] = torch.minimum(w[:lo], _edge_ramp(lo))
    if hi > 0:
        w[size - hi :] = torch.minimum(w[size - hi :], _edge_ramp(hi).flip(0))
    return w


def tiled_apply(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    tile: int,
    overlap: int,
    multiple: int,
    scale: int,
    out_channels: int,
    batch: int = 4,
) -> torch.Tensor:
    """Apply ``fn`` (``(B, C, h, w) -> (B, C_out, h*s, w*s)``) to ``x`` ``(N, C, H, W)`` by tiles.

    Tiles of equal shape run through ``fn`` together, ``batch`` tiles (times N frames) at a time;
    the output and the weight sum are accumulated in float32 on ``x``'s device.
    """
    n, _, h, w = x.shape
    s = scale
    out = torch.zeros(n, out_channels, h * s, w * s, dtype=torch.float32, device=x.device)
    norm = torch.zeros(1, 1, h * s, w * s, dtype=torch.float32, device=x.device)
    by_shape: dict[tuple[int, int], list[Tile]] = {}
    for t in plan_tiles(h, w, tile, overlap, multiple):
        by_shape.setdefault((t.r1 - t.r0, t.c1 - t.c0), []).append(t)
    for group in by_shape.values():
        for k in range(0, len(group), max(batch, 1)):
            chunk = group[k : k + max(batch, 1)]
            crops = torch.cat([x[:, :, t.r0 : t.r1, t.c0 : t.c1] for t in chunk])
            preds = fn(crops).float()
            for i, t in enumerate(chunk):
                wy = blend_weight((t.r1 - t.r0) * s, t.top * s, t.bottom * s)
                wx = blend_weight((t.c1 - t.c0) * s, t.left * s, t.right * s)
                weight = (wy[:, None] * wx[None, :]).to(x.device)
                ys, xs = slice(t.r0 * s, t.r1 * s), slice(t.c0 * s, t.c1 * s)
                out[:, :, ys, xs] += preds[i * n : (i + 1) * n] * weight
                norm[:, :, ys, xs] += weight
    return out / norm

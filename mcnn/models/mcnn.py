"""MCNN: a U-Net whose decoder levels each emit a coarse output.

Each coarse output is trained against the target reduced to its size, so the deep decoder levels get
a direct, low-frequency learning signal from the first step: the reason MCNN converges fast and
stably. ``forward`` returns only the full-resolution output (cheap inference, clean export);
``forward_multiscale`` returns ``[full, 1/2, 1/4, ...]`` for training.

Layout: input ``(B, in_channels, H, W)`` float32, output ``(B, out_channels, H*s, W*s)`` for
``s = output_scale``. Any ``H, W`` works: the input is padded to a multiple of ``2**depth`` and the
outputs are cropped back; nothing is resized. The forward pass is TorchScript-scriptable and has no
size-dependent branches, so exported models take any input size too.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from mcnn.models.config import ModelConfig
from mcnn.models.layers import down_cell, make_activation, up_cell
from mcnn.models.lowpass import LowPassFront


class DecoderStage(nn.Module):
    """Upsample, merge the encoder skip of this level (if any), and emit a coarse output (if any)."""

    def __init__(
        self, up: nn.Module, skip_level: int, merge: str, head: nn.Module | None, feedback: bool
    ) -> None:
        super().__init__()
        self.up = up
        self.skip_level = skip_level  # -1: no skip (the extra doublings of output_scale)
        self.concat = merge == "concat"
        self.head = head if head is not None else nn.Identity()
        self.has_head = head is not None
        self.feedback = feedback and head is not None

    def forward(
        self, y: torch.Tensor, skips: list[torch.Tensor], want_head: bool
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:  # noqa: UP045 - TorchScript needs Optional
        y = self.up(y)
        if self.skip_level >= 0:
            s = skips[self.skip_level]
            y = torch.cat([y, s], dim=1) if self.concat else y + s
        out: Optional[torch.Tensor] = None  # noqa: UP045
        if self.has_head and (want_head or self.feedback):
            out = self.head(y)
            if self.feedback:
                y = torch.cat([y, out], dim=1)
        return y, out


class MCNN(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        cfg = config
        self.config = config
        self.size_multiple = cfg.size_multiple
        self.output_scale = cfg.output_scale
        self.branches = cfg.branches
        self.lowpass = LowPassFront(cfg.in_channels, cfg.lowpass) if cfg.lowpass else None
        stem_in = self.lowpass.out_channels if self.lowpass is not None else cfg.in_channels
        self.stem = nn.Sequential(
            nn.Conv2d(stem_in, cfg.width(0), 3, padding=1), make_activation(cfg.activation)
        )
        self.encoder = nn.ModuleList(
            down_cell(cfg.width(level - 1), cfg.width(level), cfg)
            for level in range(1, cfg.depth + 1)
        )
        # Decoder stages run coarse to fine: levels depth-1 .. 0 (merging the skip of that level),
        # then output_scale's extra doublings with no skip. Stage i's output is at
        # 1 / 2**(n_stages - 1 - i) of the output size; the last `branches` coarse ones get heads.
        levels = list(range(cfg.depth - 1, -1, -1)) + [-1] * (cfg.output_scale.bit_length() - 1)
        n = len(levels)
        self.stages = nn.ModuleList()
        ch = cfg.width(cfg.depth)
        for i, level in enumerate(levels):
            cout = cfg.width(max(level, 0))
            up = up_cell(ch, cout, cfg)
            ch = cout * 2 if (level >= 0 and cfg.skip == "concat") else cout
            k = n - 1 - i  # this stage is at 1/2**k of the output size
            head = nn.Conv2d(ch, cfg.out_channels, 3, padding=1) if 1 <= k <= cfg.branches else None
            self.stages.append(DecoderStage(up, level, cfg.skip, head, cfg.branch_feedback))
            if head is not None and cfg.branch_feedback:
                ch += cfg.out_channels
        self.head = nn.Conv2d(ch, cfg.out_channels, 3, padding=1)

    def _run(self, x: torch.Tensor, with_branches: bool) -> list[torch.Tensor]:
        h, w = x.shape[-2], x.shape[-1]
        m = self.size_multiple
        # Replicate padding is valid for every size (reflect needs pad < size) and has no
        # size-dependent branch, so exported graphs (ONNX, TorchScript) accept any input size.
        x = F.pad(x, [0, (-w) % m, 0, (-h) % m], mode="replicate")
        if self.lowpass is not None:
            x = self.lowpass(x)
        skips = [self.stem(x)]
        for cell in self.encoder:
            skips.append(cell(skips[-1]))
        y = skips[-1]
        coarse: list[torch.Tensor] = []
        for stage in self.stages:
            y, out = stage(y, skips, with_branches)
            if out is not None and with_branches:
                coarse.append(out)
        s = self.output_scale
        outputs = [self.head(y)[:, :, : h * s, : w * s]]
        # coarse outputs were collected coarse to fine; report them as 1/2, 1/4, ...
        for k in range(len(coarse)):
            f = 1 << (k + 1)
            c = coarse[len(coarse) - 1 - k]
            outputs.append(c[:, :, : (h * s + f - 1) // f, : (w * s + f - 1) // f])
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, False)[0]

    @torch.jit.export
    def forward_multiscale(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[full, 1/2, 1/4, ...]``: the full-resolution output then one per branch."""
        return self._run(x, True)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)

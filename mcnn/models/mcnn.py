"""MCNN: a U-Net whose decoder levels each emit a coarse output.

Each coarse output is trained against the target reduced to its size, so the deep decoder levels get
a direct, low-frequency learning signal from the first step: the reason MCNN converges fast and
stably. ``forward`` returns only the full-resolution output (cheap inference, clean export);
``forward_multiscale`` returns ``[full, 1/2, 1/4, ...]`` for training.

Layout: input ``(B, in_channels, H, W)`` float32, output ``(B, out_channels, H*s, W*s)`` for
``s = output_scale``. Any ``H, W`` works: the input is padded to a multiple of ``2**depth`` and the
outputs are cropped back; nothing is resized.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mcnn.models.config import ModelConfig
from mcnn.models.layers import down_cell, make_activation, up_cell
from mcnn.models.lowpass import LowPassFront


class MCNN(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.lowpass = LowPassFront(cfg.in_channels, cfg.lowpass) if cfg.lowpass else None
        stem_in = self.lowpass.out_channels if self.lowpass else cfg.in_channels
        self.stem = nn.Sequential(
            nn.Conv2d(stem_in, cfg.width(0), 3, padding=1), make_activation(cfg.activation)
        )
        self.encoder = nn.ModuleList(
            down_cell(cfg.width(level - 1), cfg.width(level), cfg)
            for level in range(1, cfg.depth + 1)
        )
        # Decoder stages run coarse to fine: levels depth-1 .. 0 (merging the skip of that level),
        # then output_scale's extra doublings with no skip.
        extra = cfg.output_scale.bit_length() - 1
        self.stage_levels = list(range(cfg.depth - 1, -1, -1)) + [None] * extra
        n_stages = len(self.stage_levels)
        self.branch_stages = {n_stages - 1 - k: k for k in range(1, cfg.branches + 1)}
        self.decoder = nn.ModuleList()
        self.heads = nn.ModuleDict()
        ch = cfg.width(cfg.depth)
        for i, level in enumerate(self.stage_levels):
            cout = cfg.width(level if level is not None else 0)
            self.decoder.append(up_cell(ch, cout, cfg))
            ch = cout * 2 if (level is not None and cfg.skip == "concat") else cout
            if i in self.branch_stages:
                self.heads[str(self.branch_stages[i])] = nn.Conv2d(ch, cfg.out_channels, 3, padding=1)
                if cfg.branch_feedback:
                    ch += cfg.out_channels
        self.head = nn.Conv2d(ch, cfg.out_channels, 3, padding=1)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        m = self.config.size_multiple
        h, w = x.shape[-2:]
        ph, pw = (-h) % m, (-w) % m
        if ph == 0 and pw == 0:
            return x
        mode = "reflect" if ph < h and pw < w else "replicate"
        return F.pad(x, (0, pw, 0, ph), mode=mode)

    def _run(self, x: torch.Tensor, with_branches: bool) -> list[torch.Tensor]:
        cfg = self.config
        h, w = x.shape[-2:]
        x = self._pad(x)
        if self.lowpass is not None:
            x = self.lowpass(x)
        skips = [self.stem(x)]
        for cell in self.encoder:
            skips.append(cell(skips[-1]))
        y = skips.pop()
        branches: dict[int, torch.Tensor] = {}
        need_heads = with_branches or cfg.branch_feedback
        for i, (cell, level) in enumerate(zip(self.decoder, self.stage_levels, strict=True)):
            y = cell(y)
            if level is not None:
                s = skips[level]
                y = torch.cat([y, s], dim=1) if cfg.skip == "concat" else y + s
            if i in self.branch_stages and need_heads:
                k = self.branch_stages[i]
                out_k = self.heads[str(k)](y)
                branches[k] = out_k
                if cfg.branch_feedback:
                    y = torch.cat([y, out_k], dim=1)
        s = cfg.output_scale
        outputs = [self.head(y)[..., : h * s, : w * s]]
        if with_branches:
            for k in sorted(branches):
                f = 2**k
                outputs.append(branches[k][..., : -(-h * s // f), : -(-w * s // f)])
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, with_branches=False)[0]

    def forward_multiscale(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[full, 1/2, 1/4, ...]``: the full-resolution output then one per branch."""
        return self._run(x, with_branches=True)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)

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
from mcnn.models.tie_front import TieFront


def cat_channels(y: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``torch.cat([y, s], 1)`` that keeps ``y``'s channels_last layout when ``s`` has one channel.

    A one-channel tensor's strides fit both layouts, and ``torch.cat`` then falls back to NCHW; the
    next convolution copies the result back to channels_last (at 512^2 that copy cost a
    quarter-width network ~10% of its time). Giving ``s`` channels_last strides is a free view.
    """
    if (s.shape[1] == 1 and s.is_contiguous()
            and y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()):
        s = s.as_strided(s.shape, [s.shape[2] * s.shape[3], 1, s.shape[3], 1], s.storage_offset())
    return torch.cat([y, s], dim=1)


class DecoderStage(nn.Module):
    """Upsample, merge the encoder skip of this level (if any), and emit a coarse output (if any).

    ``fp32``: run this whole stage in float32 even under autocast (the last stage, whose features
    the full-resolution head reads). Heads always run in float32: a bf16 head would quantise a phase
    of ~3 rad into 0.0156 rad steps.
    """

    def __init__(self, up: nn.Module, skip_level: int, merge: str, feedback: bool) -> None:
        super().__init__()
        self.up = up
        self.skip_level = skip_level  # -1: no skip (the extra doublings of output_scale)
        self.concat = merge == "concat"
        self.head: nn.Module = nn.Identity()
        self.has_head = False
        self.feedback = False
        self.wants_feedback = feedback
        self.fp32 = False

    def set_head(self, head: nn.Module) -> None:
        self.head = head
        self.has_head = True
        self.feedback = self.wants_feedback

    def _merge(self, y: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        y = self.up(y)
        if self.skip_level >= 0:
            s = skips[self.skip_level]
            if self.fp32:
                s = s.float()
            y = cat_channels(y, s) if self.concat else y + s
        return y

    def forward(
        self, y: torch.Tensor, skips: list[torch.Tensor], want_head: bool
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:  # noqa: UP045 - TorchScript needs Optional
        if self.fp32:
            y = y.float()
            if torch.jit.is_scripting():
                y = self._merge(y, skips)
            else:
                with torch.autocast(device_type=y.device.type, enabled=False):
                    y = self._merge(y, skips)
        else:
            y = self._merge(y, skips)
        out: Optional[torch.Tensor] = None  # noqa: UP045
        if self.has_head and (want_head or self.feedback):
            out = self.head(y)
            if self.feedback:
                y = torch.cat([y.to(out.dtype), out], dim=1)
        return y, out


class OutputHead(nn.Conv2d):
    """A 3x3 convolution to the output channels, evaluated in float32 even under autocast."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if torch.jit.is_scripting():
            return self._conv_forward(x, self.weight, self.bias)
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self._conv_forward(x, self.weight.float(), None if self.bias is None
                                      else self.bias.float())


class MCNN(nn.Module):
    """See the module docstring. Construction order is fixed so that a seed gives the same trunk.

    The trunk (stem if any, encoder, decoder cells, full-resolution head) is created first from the global
    RNG; the branch heads are then created from their own generator (seeded by one draw from the
    global RNG, made whatever ``branches`` is). So ``torch.manual_seed(s); MCNN(cfg)`` starts every
    variant of a seed (``branches = 0, 1, ...``) from identical trunk weights: a fair comparison.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        cfg = config
        self.config = config
        self.size_multiple = cfg.size_multiple
        self.output_scale = cfg.output_scale
        self.branches = cfg.branches
        self.tie_front = TieFront(cfg.in_channels, cfg.tie_front) if cfg.tie_front else None
        front_out = cfg.in_channels + (1 if self.tie_front is not None else 0)
        self.lowpass = LowPassFront(front_out, cfg.lowpass) if cfg.lowpass else None
        stem_in = self.lowpass.out_channels if self.lowpass is not None else front_out
        full = cfg.first_conv == "full"
        # stride2: no full-resolution features before the encoder; skips[0] is the input itself
        self.stem: nn.Module = nn.Sequential(
            nn.Conv2d(stem_in, cfg.width(0), 3, padding=1), make_activation(cfg.activation)
        ) if full else nn.Identity()
        self.encoder = nn.ModuleList(
            down_cell(cfg.width(level - 1) if full or level > 1 else stem_in, cfg.width(level), cfg)
            for level in range(1, cfg.depth + 1)
        )
        # Decoder stages run coarse to fine: levels depth-1 .. 0 (merging the skip of that level),
        # then output_scale's extra doublings with no skip. Stage i's output is at
        # 1 / 2**(n - 1 - i) of the output size and the bottleneck at 1 / 2**n, so there are n
        # possible coarse outputs (1/2 .. 1/2**n, the last on the bottleneck, as in the reference
        # network); the finest `branches` of them get heads.
        levels = list(range(cfg.depth - 1, -1, -1)) + [-1] * (cfg.output_scale.bit_length() - 1)
        n = len(levels)
        feedback = cfg.out_channels if cfg.branch_feedback else 0
        stages: list[DecoderStage] = []
        head_inputs: list[int] = []  # channels each head reads; [0] is the bottleneck's
        ch = cfg.width(cfg.depth)
        head_inputs.append(ch)
        if cfg.branches >= n:
            ch += feedback
        for i, level in enumerate(levels):
            cout = cfg.width(max(level, 0))
            up = up_cell(ch, cout, cfg)
            merge, skip_ch = cfg.skip, cout
            if level == 0 and not full:  # the input itself: concatenated (a few channels, cheap)
                merge, skip_ch = "concat", stem_in
            ch = cout + skip_ch if (level >= 0 and merge == "concat") else cout
            head_inputs.append(ch)
            k = n - 1 - i  # this stage is at 1/2**k of the output size
            stages.append(DecoderStage(up, level, merge, cfg.branch_feedback))
            if 1 <= k <= cfg.branches:
                ch += feedback
        stages[-1].fp32 = True
        self.stages = nn.ModuleList(stages)
        self.head = OutputHead(ch, cfg.out_channels, 3, padding=1)

        # Branch heads last, from their own generator (see the class docstring).
        head_seed = int(torch.randint(0, 2**62, (1,), device="cpu").item())  # also under meta
        self.bottleneck_head: nn.Module = nn.Identity()
        self.has_bottleneck_head = cfg.branches >= n
        self.bottleneck_feedback = self.has_bottleneck_head and cfg.branch_feedback
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(head_seed)
            if self.has_bottleneck_head:
                self.bottleneck_head = OutputHead(head_inputs[0], cfg.out_channels, 3, padding=1)
            for i, stage in enumerate(stages):
                if 1 <= n - 1 - i <= cfg.branches:
                    stage.set_head(OutputHead(head_inputs[i + 1], cfg.out_channels, 3, padding=1))

    def _run(self, x: torch.Tensor, with_branches: bool) -> list[torch.Tensor]:
        h, w = x.shape[-2], x.shape[-1]
        m = self.size_multiple
        if self.tie_front is not None:  # on the true frame, before the size padding
            x = self.tie_front(x)
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
        if self.has_bottleneck_head and (with_branches or self.bottleneck_feedback):
            out = self.bottleneck_head(y)
            if with_branches:
                coarse.append(out)
            if self.bottleneck_feedback:
                y = torch.cat([y.to(out.dtype), out], dim=1)
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

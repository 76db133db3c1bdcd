"""Building blocks of the MCNN encoder/decoder: activations, norms and the two cell types."""

from __future__ import annotations

from torch import nn

from mcnn.models.config import ModelConfig


def make_activation(name: str) -> nn.Module:
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2, inplace=True)
    return {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "elu": nn.ELU}[name]()


def make_norm(name: str, channels: int) -> nn.Module:
    if name == "none":
        return nn.Identity()
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


def _down_padding(kernel: int) -> int:
    # (H + 2p - k) / 2 + 1 == H / 2 for even H
    return (kernel - 1) // 2


def _up_output_padding(kernel: int) -> int:
    # (H - 1) * 2 - 2p + k + op == 2H
    return 2 + 2 * _down_padding(kernel) - kernel


class ConvDown(nn.Sequential):
    """One stride-2 convolution (the paper's ~50M-parameter networks, pix2pix-like)."""

    def __init__(self, cin: int, cout: int, cfg: ModelConfig) -> None:
        k = cfg.kernel_size
        super().__init__(
            nn.Conv2d(cin, cout, k, stride=2, padding=_down_padding(k), bias=cfg.norm == "none"),
            make_norm(cfg.norm, cout),
            make_activation(cfg.activation),
        )


class ConvUp(nn.Sequential):
    """One stride-2 transposed convolution."""

    def __init__(self, cin: int, cout: int, cfg: ModelConfig) -> None:
        k = cfg.kernel_size
        super().__init__(
            nn.ConvTranspose2d(
                cin,
                cout,
                k,
                stride=2,
                padding=_down_padding(k),
                output_padding=_up_output_padding(k),
                bias=cfg.norm == "none",
            ),
            make_norm(cfg.norm, cout),
            make_activation(cfg.activation),
        )


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 then pointwise 1x1: most of a full 3x3 conv's reach at a fraction of its cost."""

    def __init__(self, cin: int, cout: int, cfg: ModelConfig, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1, bias=cfg.norm == "none"),
            make_norm(cfg.norm, cout),
            make_activation(cfg.activation),
        )


class BottleneckBlock(nn.Module):
    """ResNeXt-style residual block: 1x1 reduce, grouped 3x3, 1x1 expand."""

    def __init__(self, channels: int, cfg: ModelConfig) -> None:
        super().__init__()
        mid = max(channels // 2, 1)
        groups = max(g for g in range(1, min(cfg.groups, mid) + 1) if mid % g == 0)
        self.body = nn.Sequential(
            nn.Conv2d(channels, mid, 1, bias=False),
            make_norm(cfg.norm, mid),
            make_activation(cfg.activation),
            nn.Conv2d(mid, mid, 3, padding=1, groups=groups, bias=False),
            make_norm(cfg.norm, mid),
            make_activation(cfg.activation),
            nn.Conv2d(mid, channels, 1, bias=cfg.norm == "none"),
            make_norm(cfg.norm, channels),
        )
        self.act = make_activation(cfg.activation)

    def forward(self, x):
        return self.act(x + self.body(x))


class BottleneckDown(nn.Sequential):
    def __init__(self, cin: int, cout: int, cfg: ModelConfig) -> None:
        super().__init__(
            SeparableConv(cin, cout, cfg, stride=2),
            *[BottleneckBlock(cout, cfg) for _ in range(cfg.blocks_per_level)],
        )


class BottleneckUp(nn.Sequential):
    def __init__(self, cin: int, cout: int, cfg: ModelConfig) -> None:
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"),
            SeparableConv(cin, cout, cfg),
            *[BottleneckBlock(cout, cfg) for _ in range(cfg.blocks_per_level)],
        )


def down_cell(cin: int, cout: int, cfg: ModelConfig) -> nn.Module:
    return ConvDown(cin, cout, cfg) if cfg.cell == "conv" else BottleneckDown(cin, cout, cfg)


def up_cell(cin: int, cout: int, cfg: ModelConfig) -> nn.Module:
    return ConvUp(cin, cout, cfg) if cfg.cell == "conv" else BottleneckUp(cin, cout, cfg)

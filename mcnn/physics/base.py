"""Contracts shared by every simulator (forward model) and content source.

Layout everywhere: tensors are ``(B, C, H, W)``, float32, row-major, on the CPU unless stated.
A simulator turns ground-truth content into the measurement a real instrument would give, so that a
network can be trained on fresh (input, target) pairs every epoch with no downloads.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class ContentSource(Protocol):
    """Natural-image-like ground truth: procedural fields, bundled images or a user's folder."""

    def sample(
        self, batch: int, size: tuple[int, int], generator: torch.Generator, channels: int = 1
    ) -> torch.Tensor:
        """Return ``(batch, channels, H, W)`` float32 images in [0, 1]."""
        ...


@runtime_checkable
class ParameterSampler(Protocol):
    """Random per-example physical parameters (a defocus jitter, a dose), one ``(batch,)`` tensor each.

    Kept apart from the forward model so that a simulator can be run with fixed, swept or random
    parameters; all randomness comes from ``generator``.
    """

    def sample(self, batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]: ...


class Simulator(nn.Module):
    """A forward model that makes training pairs: ``inputs = noise(A(truth))``, ``targets = truth``.

    Subclasses set ``in_channels`` (channels of the measurement the network sees), ``out_channels``
    (channels of what the network must recover) and ``scale`` (target size / input size, an integer).
    """

    in_channels: int = 1
    out_channels: int = 1
    scale: int = 1

    def sample(
        self,
        batch: int,
        size: tuple[int, int],
        generator: torch.Generator,
        content: ContentSource,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(inputs (B, in_channels, H, W), targets (B, out_channels, H*scale, W*scale))``.

        ``size`` is the input (measurement) size ``(H, W)``. All randomness comes from ``generator``
        so that a pair is reproducible from its seed.
        """
        raise NotImplementedError

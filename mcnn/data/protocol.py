"""The one interface the trainer needs from training data.

A pair dataset is a ``torch.utils.data.Dataset`` whose items are ``(input, target)``: ``input`` is
``(C_in, H, W)`` float32 and ``target`` is ``(C_out, H*s, W*s)`` float32 for an integer scale ``s``.
Sources that make fresh examples every epoch (simulators) implement ``set_epoch``; the trainer calls it
before each epoch. Recorded pairs (``mcnn.data.recording``), image folders and simulators all satisfy it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class PairDataset(Protocol):
    in_channels: int
    out_channels: int

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]: ...


def set_epoch(dataset: object, epoch: int) -> None:
    """Tell a dataset which epoch starts, if it cares (simulators draw new examples)."""
    hook = getattr(dataset, "set_epoch", None)
    if callable(hook):
        hook(epoch)

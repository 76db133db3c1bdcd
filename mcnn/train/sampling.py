"""The order examples are visited in: a function of (seed, epoch) alone, split across ranks.

Because the order is reproducible, a resumed run continues from the exact batch where it stopped
instead of replaying or skipping examples.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[int]):
    def __init__(
        self,
        length: int,
        batch_size: int,
        *,
        seed: int,
        epoch: int,
        start_batch: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
    ) -> None:
        self.length, self.batch_size = length, batch_size
        self.seed, self.epoch, self.start_batch = seed, epoch, start_batch
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle

    @property
    def batches_per_epoch(self) -> int:
        return self.length // (self.batch_size * self.world_size)

    def _order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.length))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.length, generator=g).tolist()

    def __iter__(self) -> Iterator[int]:
        per_rank = self.batches_per_epoch * self.batch_size
        mine = self._order()[self.rank :: self.world_size][:per_rank]
        return iter(mine[self.start_batch * self.batch_size :])

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.batch_size


def loader_workers(requested: int | None, device_type: str, world_size: int = 1) -> int:
    """DataLoader worker processes: ``requested`` when set; else none on CPU (the simulation and
    the network share the cores) and ``min(8, CPUs per rank - 2)`` on CUDA, where simulating on
    the main process starves the GPU (a 128² defocus run on an H100 was bound at 11 it/s by it)."""
    if requested is not None:
        return requested
    if device_type != "cuda":
        return 0
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, min(8, (cpus or 1) // max(world_size, 1) - 2))

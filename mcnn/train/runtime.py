"""Where training runs: the torchrun (DDP) process group (device choice lives in mcnn.device)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch

from mcnn.device import autocast_dtype, select_device  # re-exported for old imports

__all__ = ["DistContext", "autocast_dtype", "select_device"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Rank and world size from torchrun's environment; a single process is world size 1."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls) -> DistContext:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world)

    def init(self, device: torch.device) -> None:
        import torch.distributed as dist

        if self.enabled and not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group(backend=backend, rank=self.rank, world_size=self.world_size)
            log.info("process group %s: rank %d of %d", backend, self.rank, self.world_size)

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        import torch.distributed as dist

        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()

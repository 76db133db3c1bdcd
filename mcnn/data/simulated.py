"""Training pairs made on the fly by a simulator: fresh every epoch, reproducible from a seed.

Item ``i`` of epoch ``e`` is drawn with a ``torch.Generator`` seeded from a hash of
``(seed, stream, e, i)`` alone, so it does not depend on DataLoader workers, batch order or what was
drawn before. The epoch lives in a shared-memory tensor so that persistent DataLoader workers see
``set_epoch`` too. The validation set uses its own stream and never changes epoch; its seeds are
disjoint from training's (``mcnn.data.seeds``) and it is made from its own content source, so image
content is held out image by image (``build_simulated_datasets``).
"""

from __future__ import annotations

import logging

import torch

from mcnn.data.config import SimulatedDataConfig
from mcnn.data.seeds import VAL_STREAM, example_seed
from mcnn.physics.base import ContentSource, Simulator
from mcnn.physics.build import build_content, build_simulator

logger = logging.getLogger(__name__)

__all__ = ["SimulatedPairs", "build_simulated_datasets", "example_seed"]


class SimulatedPairs(torch.utils.data.Dataset):
    """A PairDataset of ``length`` simulated examples per epoch at input size ``(H, W)``.

    ``frozen=True`` ignores ``set_epoch`` (a fixed validation set).
    """

    def __init__(
        self,
        simulator: Simulator,
        content: ContentSource,
        size: tuple[int, int],
        length: int,
        seed: int,
        *,
        stream: str = "train",
        frozen: bool = False,
    ) -> None:
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        self.simulator = simulator
        self.content = content
        self.size = (int(size[0]), int(size[1]))
        self.length = int(length)
        self.seed = int(seed)
        self.stream = stream
        self.frozen = frozen
        self.in_channels = simulator.in_channels
        self.out_channels = simulator.out_channels
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        """Switch to the examples of ``epoch`` (no-op when frozen)."""
        if not self.frozen:
            self._epoch.fill_(int(epoch))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} examples")
        generator = torch.Generator().manual_seed(
            example_seed(self.seed, self.stream, self.epoch, index)
        )
        with torch.no_grad():
            inputs, targets = self.simulator.sample(1, self.size, generator, self.content)
        return inputs[0].contiguous(), targets[0].contiguous()


def build_simulated_datasets(cfg: SimulatedDataConfig) -> tuple[SimulatedPairs, SimulatedPairs]:
    """``(train, val)``: train changes every epoch; val is fixed, drawn from its own seed stream and
    from its own content (the held-out images of ``cfg.content``, see ``build_content``)."""
    simulator = build_simulator(cfg.simulator)
    train_content = build_content(cfg.content, split="train")
    val_content = build_content(cfg.content, split="val")
    train = SimulatedPairs(
        simulator, train_content, cfg.size_hw, cfg.examples_per_epoch, cfg.seed
    )
    val = SimulatedPairs(
        simulator, val_content, cfg.size_hw, cfg.val_examples, cfg.seed, stream=VAL_STREAM,
        frozen=True,
    )
    logger.info(
        "simulated data: %s from %s, %d + %d examples of %s px",
        cfg.simulator.name,
        cfg.content.kind,
        cfg.examples_per_epoch,
        cfg.val_examples,
        cfg.size_hw,
    )
    return train, val

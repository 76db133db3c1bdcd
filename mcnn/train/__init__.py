"""Training: the config, the loop, checkpoints and metrics.

Names are loaded on first use (PEP 562), so ``import mcnn.train.config`` loads the config only, not
the trainer, the simulators or TensorBoard.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "LoopConfig": "config",
    "OptimConfig": "config",
    "TrainConfig": "config",
    "Trainer": "trainer",
    "TrainingError": "trainer",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mcnn.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mcnn.train.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))

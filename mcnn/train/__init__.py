"""Training: the config, the loop, checkpoints and metrics.

Names are loaded on first use (PEP 562), so ``import mcnn.train.config`` loads the config only, not
the trainer, the simulators or TensorBoard.
"""

from __future__ import annotations

from mcnn.utils.lazy import lazy_exports

_HOMES = {
    "LoopConfig": "config",
    "OptimConfig": "config",
    "TrainConfig": "config",
    "Trainer": "trainer",
    "TrainingError": "errors",
}

__all__ = sorted(_HOMES)


__getattr__, __dir__ = lazy_exports("mcnn.train", _HOMES, globals())

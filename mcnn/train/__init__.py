"""Training: the config, the loop, checkpoints and metrics."""

from mcnn.train.config import LoopConfig, OptimConfig, TrainConfig
from mcnn.train.trainer import Trainer, TrainingError

__all__ = ["LoopConfig", "OptimConfig", "TrainConfig", "Trainer", "TrainingError"]

"""Networks only: they know nothing about data, files or training."""

from mcnn.models.config import LowPassConfig, ModelConfig
from mcnn.models.lowpass import LowPassFront
from mcnn.models.mcnn import MCNN, count_parameters

__all__ = ["MCNN", "LowPassConfig", "LowPassFront", "ModelConfig", "count_parameters"]

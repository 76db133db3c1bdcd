"""Named network sizes for the speed benchmark, and loading any ``ModelConfig`` from a file.

- ``denoiser``: the paper's ~39M-parameter denoiser (7 stride-2 levels, 64 -> 512 channels, additive
  skips, a coarse output at every level, fixed low-pass front layer, and as in the paper a stride-2
  first convolution: no full-resolution stem).
- ``small``: ~2.9M parameters built for CPU speed. Cost at full resolution is memory traffic, so it
  keeps only 4 channels there and doubles the width at each of its 7 levels (capped at 224); most
  parameters sit at 1/64 and 1/128 of the image, where they cost little time.
"""

from __future__ import annotations

from pathlib import Path

from mcnn.models.config import LowPassConfig, ModelConfig

MODEL_PRESETS: dict[str, ModelConfig] = {
    "denoiser": ModelConfig(
        depth=7, base_width=64, max_width=512, skip="add", branches=7, lowpass=LowPassConfig(),
        first_conv="stride2",
    ),
    "small": ModelConfig(depth=7, base_width=4, max_width=224, skip="add", branches=6),
}


def model_preset(name: str) -> ModelConfig:
    if name not in MODEL_PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose from {sorted(MODEL_PRESETS)}")
    return MODEL_PRESETS[name].model_copy(deep=True)


def load_model_config(path: Path) -> ModelConfig:
    """A ``ModelConfig`` from YAML/TOML/JSON: either the fields themselves or a training config's
    ``model:`` section."""
    from mcnn.config_io import read_mapping, validate

    data = read_mapping(Path(path))
    if isinstance(data.get("model"), dict):
        data = data["model"]
    return validate(ModelConfig, data, str(path))

"""Model files: the network's weights as safetensors with its config in the metadata, never pickle.

This is the small module inference needs to rebuild a trained network; it imports only torch and
``mcnn.models`` (safetensors inside the functions), so ``mcnn.infer`` does not pull in the trainer.
A file is checked against the network its config describes (tensor names and shapes, read from the
header) before any weights are read, so a tampered or mismatched file is one clear error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from mcnn.models import MCNN, ModelConfig
from mcnn.utils.atomic import atomic_path

MODEL_FILE = "model.safetensors"
MODEL_CONFIG_KEY = "mcnn_model_config"
TRAINING_DATA_KEY = "mcnn_training_data"
"""Metadata key of the training data config (JSON): how inputs were made and normalised, and the
physical parameters the model was trained for (pixel size, wavelength, distances, dose)."""


class CheckpointError(ValueError):
    """A checkpoint path that does not hold what it should; the message names the file."""


def save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Crash-safe safetensors write (tmp + fsync + rename) of CPU copies of ``tensors``."""
    from safetensors.torch import save_file

    with atomic_path(Path(path)) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata)


def unwrap(model: nn.Module) -> Any:
    """The bare module inside DDP / torch.compile / training wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def save_model(
    model: nn.Module, path: Path, training_data: dict[str, Any] | None = None
) -> None:
    """Weights with the model config, and the training data config when given, in the safetensors
    metadata: the file alone says how to use the model on new data."""
    import json

    bare = unwrap(model)
    meta = {MODEL_CONFIG_KEY: bare.config.model_dump_json()}
    if training_data is not None:
        meta[TRAINING_DATA_KEY] = json.dumps(training_data)
    save_tensors(dict(bare.state_dict()), Path(path), meta)


def read_training_data(path: Path) -> dict[str, Any] | None:
    """The training data config stored with a model (None for files saved without one)."""
    import json

    from safetensors import safe_open

    file = resolve_model_file(path)
    try:
        with safe_open(str(file), framework="pt") as f:
            text = (f.metadata() or {}).get(TRAINING_DATA_KEY)
        data = json.loads(text) if text is not None else None
    except Exception as exc:  # safetensors and json raise their own error types
        raise CheckpointError(f"{file}: unreadable {TRAINING_DATA_KEY} metadata ({_first_line(exc)})"
                              ) from exc
    if data is not None and not isinstance(data, dict):
        raise CheckpointError(f"{file}: {TRAINING_DATA_KEY} metadata is not a JSON object")
    return data


def resolve_model_file(path: Path) -> Path:
    """``path`` itself if it is a .safetensors file, else the model file of a checkpoint/run folder."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / MODEL_FILE, path / "checkpoints" / "best" / MODEL_FILE):
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"{path}: no {MODEL_FILE} in this folder or its checkpoints/best/")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: expected a .safetensors file or a checkpoint folder")
    return path


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_model_config(file: Path) -> tuple[ModelConfig, dict[str, tuple[int, ...]]]:
    """The stored config and the file's tensor shapes (header only: no weights are read)."""
    from pydantic import ValidationError
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt") as f:
            meta = f.metadata() or {}
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"{file}: not a readable safetensors file ({_first_line(exc)})") from exc
    if MODEL_CONFIG_KEY not in meta:
        raise CheckpointError(f"{file}: no {MODEL_CONFIG_KEY} metadata; not an mcnn checkpoint")
    try:
        config = ModelConfig.model_validate_json(meta[MODEL_CONFIG_KEY])
    except ValidationError as exc:
        from mcnn.config_io import format_validation_error  # the one error formatter

        first = format_validation_error(exc).splitlines()[0]
        raise CheckpointError(
            f"{file}: {MODEL_CONFIG_KEY} metadata is not a valid model config ({first})"
        ) from None
    return config, shapes


def config_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The tensor shapes of the network ``config`` describes, built on the meta device: a file
    whose metadata declares a multi-GB network is refused before anything is allocated."""
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in MCNN(config).state_dict().items()}


def check_model_file(file: Path, expected: dict[str, tuple[int, ...]],
                     shapes: dict[str, tuple[int, ...]]) -> None:
    """Compare the file's tensor ``shapes`` with the ``expected`` ones (:func:`config_shapes`, or
    a live model's when resuming): a wrong file is named, not a ``load_state_dict`` traceback."""
    for name, shape in expected.items():
        if name not in shapes:
            raise CheckpointError(f"{file}: tensor {name} is missing; the stored config needs it")
        if shapes[name] != shape:
            raise CheckpointError(
                f"{file}: tensor {name} has shape {list(shapes[name])} but the stored config "
                f"gives {list(shape)}"
            )
    extra = [k for k in shapes if k not in expected]
    if extra:
        raise CheckpointError(f"{file}: tensor {extra[0]} is not part of the stored config's network")


def load_model(path: Path, device: str | torch.device = "cpu") -> tuple[MCNN, ModelConfig]:
    """Rebuild the network from a checkpoint folder or its model.safetensors, in eval mode."""
    from safetensors.torch import load_file

    file = resolve_model_file(path)
    config, shapes = read_model_config(file)
    check_model_file(file, config_shapes(config), shapes)
    try:
        state = load_file(str(file), device="cpu")
    except Exception as exc:
        raise CheckpointError(f"{file}: not a readable safetensors file ({_first_line(exc)})") from exc
    model = MCNN(config)
    model.load_state_dict(state)
    return model.to(device).eval(), config

"""Checkpoints as safetensors + JSON, never pickle.

A checkpoint is a folder::

    model.safetensors          weights; its metadata holds the model config (self-contained)
    config.json                the full training config
    training_state.safetensors optimiser / discriminator tensors and RNG states
    training_state.json        step, epoch position, metrics, scheduler and optimiser scalars

Folders are written beside the target and swapped in, so a crash mid-save keeps the previous one.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mcnn.models import MCNN, ModelConfig
from mcnn.utils.atomic import atomic_path, atomic_write_text, fsync_dir

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
STATE_TENSORS = "training_state.safetensors"
STATE_JSON = "training_state.json"
MODEL_CONFIG_KEY = "mcnn_model_config"


class CheckpointError(ValueError):
    """A checkpoint path that does not hold what it should; the message names the file."""


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata)


def save_model(model: MCNN, path: Path) -> None:
    """Weights only, with the model config in the safetensors metadata."""
    state = {k: v for k, v in unwrap(model).state_dict().items()}
    meta = {MODEL_CONFIG_KEY: unwrap(model).config.model_dump_json()}
    _save_tensors(state, Path(path), meta)


def unwrap(model: nn.Module) -> Any:
    """The bare MCNN inside DDP / torch.compile / training wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def _model_file(path: Path) -> Path:
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


def load_model(path: Path, device: str | torch.device = "cpu") -> tuple[MCNN, ModelConfig]:
    """Rebuild the network from a checkpoint folder or its model.safetensors."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    file = _model_file(path)
    try:
        with safe_open(str(file), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(file), device=str(device))
    except Exception as exc:
        raise CheckpointError(f"{file}: not a readable safetensors file ({exc})") from exc
    if MODEL_CONFIG_KEY not in meta:
        raise CheckpointError(f"{file}: no {MODEL_CONFIG_KEY} metadata; not an mcnn checkpoint")
    config = ModelConfig.model_validate_json(meta[MODEL_CONFIG_KEY])
    model = MCNN(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{file}: weights do not match the stored config (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]})"
        )
    return model.to(device).eval(), config


def _split_optimizer(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for key, val in st.items():
            if torch.is_tensor(val):
                tensors[f"{prefix}.{pid}.{key}"] = val
            else:
                scalars[f"{pid}.{key}"] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(
    prefix: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, val in tensors.items():
        if name.startswith(prefix + "."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = val
    for name, val in info["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = val
    opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})


def save_checkpoint(
    folder: Path,
    *,
    model: nn.Module,
    config_json: str,
    optimizers: dict[str, torch.optim.Optimizer],
    schedulers: dict[str, Any],
    extra_modules: dict[str, nn.Module],
    state: dict[str, Any],
) -> None:
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_model(model, tmp / MODEL_FILE)
    atomic_write_text(tmp / CONFIG_FILE, config_json)
    tensors: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda{i}"] = s
    info: dict[str, Any] = {"state": state, "optimizers": {}, "schedulers": {}}
    for name, opt in optimizers.items():
        t, i = _split_optimizer(f"optim_{name}", opt)
        tensors.update(t)
        info["optimizers"][name] = i
    for name, sch in schedulers.items():
        info["schedulers"][name] = sch.state_dict()
    for name, mod in extra_modules.items():
        for k, v in mod.state_dict().items():
            tensors[f"module_{name}.{k}"] = v
    np_state = np.random.get_state()
    info["rng"] = {
        "python": json.loads(json.dumps(random.getstate(), default=list)),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
    }
    _save_tensors(tensors, tmp / STATE_TENSORS, {})
    atomic_write_text(tmp / STATE_JSON, json.dumps(info, indent=1, default=float))
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    fsync_dir(folder.parent)
    shutil.rmtree(old, ignore_errors=True)


def resolve_checkpoint(folder: Path) -> Path | None:
    """The complete checkpoint folder, falling back to ``.old`` if a crash hit the swap."""
    folder = Path(folder)
    for candidate in (folder, folder.with_name(folder.name + ".old")):
        if (candidate / STATE_JSON).is_file() and (candidate / MODEL_FILE).is_file():
            return candidate
    return None


def load_checkpoint(
    folder: Path,
    *,
    model: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    schedulers: dict[str, Any],
    extra_modules: dict[str, nn.Module],
) -> dict[str, Any]:
    """Restore everything ``save_checkpoint`` wrote; returns the saved trainer state."""
    from safetensors.torch import load_file

    found = resolve_checkpoint(folder)
    if found is None:
        raise CheckpointError(f"{folder}: no complete checkpoint to resume from")
    weights = load_file(str(found / MODEL_FILE))
    unwrap(model).load_state_dict(weights)
    tensors = load_file(str(found / STATE_TENSORS))
    info = json.loads((found / STATE_JSON).read_text())
    for name, opt in optimizers.items():
        _restore_optimizer(f"optim_{name}", opt, tensors, info["optimizers"][name])
    for name, sch in schedulers.items():
        sch.load_state_dict(info["schedulers"][name])
    for name, mod in extra_modules.items():
        prefix = f"module_{name}."
        mod.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda")]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    py = info["rng"]["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = info["rng"]["numpy"]
    np.random.set_state((npst[0], np.array(npst[1], dtype=np.uint32), *npst[2:]))
    return info["state"]

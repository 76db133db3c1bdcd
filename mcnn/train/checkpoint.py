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

from mcnn.utils.atomic import atomic_write_text, fsync_dir
from mcnn.weights import (  # re-exported: the model-file half of a checkpoint lives there
    MODEL_CONFIG_KEY,
    MODEL_FILE,
    CheckpointError,
    check_model_file,
    load_model,
    read_model_config,
    resolve_model_file,
    save_model,
    save_tensors,
    unwrap,
)

__all__ = [
    "CONFIG_FILE", "MODEL_CONFIG_KEY", "MODEL_FILE", "STATE_JSON", "STATE_TENSORS",
    "CheckpointError", "load_checkpoint", "load_model", "resolve_checkpoint", "resolve_model_file",
    "save_checkpoint", "save_model", "saved_config_json", "unwrap",
]

CONFIG_FILE = "config.json"
STATE_TENSORS = "training_state.safetensors"
STATE_JSON = "training_state.json"

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
    save_model(model, tmp / MODEL_FILE, training_data=json.loads(config_json).get("data"))
    atomic_write_text(tmp / CONFIG_FILE, config_json)
    tensors: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda{i}"] = s
    info: dict[str, Any] = {"state": state, "optimizers": {}, "schedulers": {}}
    for name, opt in optimizers.items():
        opt_tensors, opt_info = _split_optimizer(f"optim_{name}", opt)
        tensors.update(opt_tensors)
        info["optimizers"][name] = opt_info
    for name, sch in schedulers.items():
        info["schedulers"][name] = sch.state_dict()
    for name, mod in extra_modules.items():
        for k, v in mod.state_dict().items():
            tensors[f"module_{name}.{k}"] = v
    np_state: tuple[Any, ...] = tuple(np.random.get_state())
    info["rng"] = {
        "python": json.loads(json.dumps(random.getstate(), default=list)),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
    }
    save_tensors(tensors, tmp / STATE_TENSORS, {})
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


def saved_config_json(folder: Path) -> str | None:
    """The training config stored with the checkpoint in ``folder`` (or its ``.old``), if any."""
    found = resolve_checkpoint(folder)
    if found is None or not (found / CONFIG_FILE).is_file():
        return None
    return (found / CONFIG_FILE).read_text()


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
    bare = unwrap(model)
    _, shapes = read_model_config(found / MODEL_FILE)
    check_model_file(found / MODEL_FILE, bare.config, shapes)
    bare.load_state_dict(load_file(str(found / MODEL_FILE)))
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

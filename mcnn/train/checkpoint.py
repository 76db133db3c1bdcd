"""Checkpoints as safetensors + JSON, never pickle, that survive any sequence of kills.

A checkpoint is a folder::

    model.safetensors          weights; its metadata holds the model and training-data configs
    config.json                the full training config
    training_state.safetensors optimiser / discriminator tensors and RNG states
    training_state.json        step, epoch position, metrics, scheduler and optimiser scalars
    manifest.json              every file above with its size and SHA-256, written last

Each save writes a new versioned folder (``last-000042``) beside the name, completes it with its
manifest, then atomically repoints the name (``checkpoints/last``, a symbolic link replaced with
``os.replace``) and only then deletes older versions. So at every instant the name points at a
complete folder, or (a kill between the new folder and the pointer) a complete older version is
still there; a folder is used only if its manifest is present and every file matches it, so a
half-written or half-deleted version is never taken for a checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
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
MANIFEST = "manifest.json"
_VERSION_DIGITS = 6


def _crash_point(where: str) -> None:
    """Does nothing; tests replace it to stop a save at each of its steps, as a kill would."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _versions(folder: Path) -> list[Path]:
    """The versioned folders of checkpoint name ``folder`` (``last-000007``), newest first."""
    pattern = re.compile(rf"^{re.escape(folder.name)}-(\d{{{_VERSION_DIGITS}}})$")
    found = []
    if folder.parent.is_dir():
        for p in folder.parent.iterdir():
            m = pattern.match(p.name)
            if m and p.is_dir() and not p.is_symlink():
                found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found, reverse=True)]


def _legacy(candidate: Path) -> bool:
    """A folder written before manifests existed: the bare name, or it renamed to version 0."""
    return not candidate.name[-_VERSION_DIGITS:].isdigit() or candidate.name.endswith(
        "-" + "0" * _VERSION_DIGITS)


def _complete(candidate: Path, verify_hashes: bool = False) -> bool:
    """Every file the manifest lists is there with its size (and hash, when asked)."""
    if not (candidate / MANIFEST).exists() and _legacy(candidate):
        return (candidate / MODEL_FILE).is_file() and (candidate / STATE_JSON).is_file()
    try:
        manifest = json.loads((candidate / MANIFEST).read_text())
        files = manifest["files"]
        for name, entry in files.items():
            path = candidate / name
            if path.stat().st_size != entry["size"]:
                return False
            if verify_hashes and _sha256(path) != entry["sha256"]:
                return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return MODEL_FILE in files and STATE_JSON in files


def _candidates(folder: Path) -> list[Path]:
    """Where a checkpoint named ``folder`` may be: what the name points at, then every version,
    newest first, then a pre-manifest folder of the old layout."""
    folder = Path(folder)
    out: list[Path] = []
    if folder.is_symlink() and folder.exists():
        out.append(folder.resolve())
    out += [v for v in _versions(folder) if v not in out]
    if folder.is_dir() and not folder.is_symlink():
        out.append(folder)
    return out


def _repoint(folder: Path, version: Path) -> None:
    """Atomically make the name ``folder`` a link to ``version`` (a sibling)."""
    link_tmp = folder.with_name(f".{folder.name}.link.tmp")
    if link_tmp.is_symlink() or link_tmp.exists():
        link_tmp.unlink()
    os.symlink(version.name, link_tmp)
    os.replace(link_tmp, folder)
    fsync_dir(folder.parent)


def _remove_version(version: Path) -> None:
    """Delete a stale version file by file (its manifest first, so it stops counting at once)."""
    names = [MANIFEST] + sorted(p.name for p in version.iterdir() if p.name != MANIFEST)
    for name in names:
        (version / name).unlink(missing_ok=True)
        _crash_point("delete")
    version.rmdir()

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
    """Write a new version of checkpoint ``folder`` (e.g. ``checkpoints/last``); see the module
    docstring for why any sequence of kills leaves a complete checkpoint behind."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.is_dir() and not folder.is_symlink():  # the old layout: keep it as version 0
        folder.rename(folder.with_name(f"{folder.name}-{0:0{_VERSION_DIGITS}d}"))
    versions = _versions(folder)
    number = 1 + max((int(v.name.rsplit("-", 1)[1]) for v in versions), default=0)
    tmp = folder.with_name(f"{folder.name}-{number:0{_VERSION_DIGITS}d}")
    tmp.mkdir()
    _crash_point("folder")
    save_model(model, tmp / MODEL_FILE, training_data=json.loads(config_json).get("data"))
    _crash_point("model")
    atomic_write_text(tmp / CONFIG_FILE, config_json)
    _crash_point("config")
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
    _crash_point("state_tensors")
    atomic_write_text(tmp / STATE_JSON, json.dumps(info, indent=1, default=float))
    _crash_point("state_json")
    files = {p.name: {"size": p.stat().st_size, "sha256": _sha256(p)}
             for p in sorted(tmp.iterdir()) if p.is_file()}
    atomic_write_text(tmp / MANIFEST, json.dumps({"files": files}, indent=1))
    _crash_point("manifest")
    _repoint(folder, tmp)
    _crash_point("pointer")
    for stale in _versions(folder):
        if stale != tmp:
            _remove_version(stale)


def resolve_checkpoint(folder: Path, verify_hashes: bool = False) -> Path | None:
    """The newest complete version of checkpoint ``folder`` (None when there is none)."""
    for candidate in _candidates(Path(folder)):
        if _complete(candidate, verify_hashes):
            return candidate
    return None


def saved_config_json(folder: Path) -> str | None:
    """The training config stored with the newest complete version of ``folder``, if any."""
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

    found = resolve_checkpoint(folder, verify_hashes=True)
    if found is None:
        raise CheckpointError(f"{folder}: no complete checkpoint to resume from")
    bare = unwrap(model)
    _, shapes = read_model_config(found / MODEL_FILE)
    check_model_file(found / MODEL_FILE, {k: tuple(v.shape) for k, v in bare.state_dict().items()},
                     shapes)
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

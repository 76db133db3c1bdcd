"""What may change when a run is resumed, and the one-line refusal when anything else does.

A resumed run must be the run that was saved: a different model, loss, data or optimiser would make
the saved optimiser state and schedule meaningless. Only fields that say where and how fast the run
goes, how often it reports, and how long it is (``train.steps``: extending a run) may change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcnn.train.config import TrainConfig

RESUMABLE_FIELDS = frozenset({
    "name", "out_dir",
    "train.steps", "train.device", "train.precision", "train.channels_last", "train.compile",
    "train.num_workers", "train.log_every", "train.tensorboard", "train.val_every",
    "train.val_batch_size", "train.checkpoint_every", "train.sample_images", "train.progress_every_s",
    # Only the start of a run reads it; a resumed run takes its weights from its own checkpoint.
    "train.init_weights",
})


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def _show(value: Any) -> str:
    return "unset" if value is _MISSING else json.dumps(value)


_MISSING = object()


def config_differences(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``field (old -> new)`` for every field that differs and may not change on resume."""
    a, b = _flatten(saved), _flatten(new)
    out = []
    for key in list(b) + [k for k in a if k not in b]:
        if key in RESUMABLE_FIELDS:
            continue
        old, cur = a.get(key, _MISSING), b.get(key, _MISSING)
        if old != cur:
            out.append(f"{key} ({_show(old)} -> {_show(cur)})")
    return out


def saved_run_config(checkpoint: Path, config: TrainConfig) -> dict[str, Any] | None:
    """The config saved with ``checkpoint`` as JSON data, defaults filled in where it validates."""
    from mcnn.train.checkpoint import saved_config_json

    text = saved_config_json(checkpoint)
    if text is None:
        return None
    try:
        return type(config).model_validate_json(text).model_dump(mode="json")
    except ValueError:  # an older schema: compare what is there
        return dict(json.loads(text))

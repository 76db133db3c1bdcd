"""Before the first step: the data must fit the model, and ``train.init_weights`` must fit too."""

from __future__ import annotations

import logging
from pathlib import Path

from mcnn.data.protocol import PairDataset
from mcnn.models import MCNN
from mcnn.train.config import TrainConfig
from mcnn.train.errors import TrainingError

log = logging.getLogger(__name__)


def check_data_fits_model(cfg: TrainConfig, train: PairDataset) -> None:
    """Channels and output scale of the first pair against the model: one ``TrainingError``
    naming every mismatch, before a step fails deep inside a convolution."""
    x, y = train[0]
    m = cfg.model
    problems = []
    if x.shape[0] != m.in_channels:
        problems.append(f"model.in_channels={m.in_channels} but the data inputs have {x.shape[0]}")
    if y.shape[0] != m.out_channels:
        problems.append(f"model.out_channels={m.out_channels} but the data targets have {y.shape[0]}")
    scale = y.shape[-1] / x.shape[-1]
    if scale != m.output_scale or y.shape[-2] / x.shape[-2] != m.output_scale:
        problems.append(
            f"model.output_scale={m.output_scale} but targets {tuple(y.shape[-2:])} / inputs "
            f"{tuple(x.shape[-2:])} give {scale:g}"
        )
    if problems:
        raise TrainingError("; ".join(problems))


def load_init_weights(model: MCNN, path: Path) -> None:
    """Copy the weights of the checkpoint at ``path`` (a run or checkpoint folder, or a
    model.safetensors) into ``model``; a different architecture is a one-line ``TrainingError``
    naming the file and the first mismatch."""
    from mcnn.weights import CheckpointError, load_model, resolve_model_file

    try:
        file = resolve_model_file(path)
        source, source_cfg = load_model(file)
    except CheckpointError as exc:
        raise TrainingError(f"train.init_weights: {exc}") from None
    have, want = source.state_dict(), model.state_dict()
    problem = next((f"tensor {k} has shape {list(have[k].shape)} there but {list(v.shape)} here"
                    for k, v in want.items() if k in have and have[k].shape != v.shape), None)
    missing = [k for k in want if k not in have] + [k for k in have if k not in want]
    if problem is None and missing:
        where = "here only" if missing[0] in want else "there only"
        problem = f"tensor {missing[0]} is {where}"
    if problem is not None:
        mine, theirs = model.config.model_dump(), source_cfg.model_dump()
        diff = [f"model.{k}={theirs.get(k)!r} there, {v!r} here" for k, v in mine.items()
                if v != theirs.get(k)]
        raise TrainingError(f"train.init_weights: {file}: architecture differs from model ("
                            + ("; ".join(diff[:3]) or problem) + ")")
    model.load_state_dict(have)
    log.info("started from the weights of %s", file)

"""One entry point from a data config to (train, validation) pair datasets."""

from __future__ import annotations

from typing import Any


def build_datasets(cfg: Any, seed: int = 0) -> tuple[Any, Any]:
    if cfg.kind == "simulated":
        from mcnn.data.simulated import build_simulated_datasets

        return build_simulated_datasets(cfg)
    if cfg.kind == "folder":
        from mcnn.data.folder import load_folder_pairs

        return load_folder_pairs(cfg, seed)
    if cfg.kind == "pairs":
        from mcnn.data.recording import load_pair_datasets

        return load_pair_datasets(cfg)
    raise ValueError(f"data.kind: unknown kind {cfg.kind!r}")

"""From a validated config (``mcnn.physics.config``) to the simulator or content source it names.

Kept apart from the configs so that a config can be read and checked without importing any
implementation; this module imports them all.
"""

from __future__ import annotations

from typing import Literal

from mcnn.physics.base import ContentSource, Simulator
from mcnn.physics.config import (
    BundledContentConfig,
    DefocusConfig,
    FolderContentConfig,
    LaplacianConfig,
    ProceduralContentConfig,
    ScreenRigConfig,
    StemConfig,
)
from mcnn.physics.defocus import DefocusSeriesSimulator
from mcnn.physics.images import BUNDLED_NAMES, BundledImages, FolderImages, holdout_split
from mcnn.physics.laplacian import LaplacianPhaseSimulator
from mcnn.physics.procedural import ProceduralContent
from mcnn.physics.screen_rig import ScreenRigSimulator
from mcnn.physics.stem import StemAdfSimulator

Split = Literal["train", "val", "all"]

_SIMULATORS: dict[type, type[Simulator]] = {
    LaplacianConfig: LaplacianPhaseSimulator,
    DefocusConfig: DefocusSeriesSimulator,
    StemConfig: StemAdfSimulator,
    ScreenRigConfig: ScreenRigSimulator,
}


def build_simulator(
    cfg: LaplacianConfig | DefocusConfig | StemConfig | ScreenRigConfig,
) -> Simulator:
    """Make the simulator a config describes."""
    try:
        simulator = _SIMULATORS[type(cfg)]
    except KeyError:
        raise TypeError(f"not a simulator config: {type(cfg).__name__}") from None
    return simulator(cfg)


def build_content(
    cfg: ProceduralContentConfig | BundledContentConfig | FolderContentConfig,
    split: Split = "all",
) -> ContentSource:
    """Make the content source a config describes, for one split of its images.

    ``split="train"`` / ``"val"`` give disjoint image sets (``holdout_split`` of the names or the
    paths relative to the folder, with the config's ``val_fraction``); ``"all"`` uses every image.
    Procedural content has no images: its train and validation streams differ by generator seed
    (``mcnn.data.simulated.example_seed``). A folder is checked here, not at validation.
    """
    if split not in ("train", "val", "all"):
        raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}")
    if isinstance(cfg, ProceduralContentConfig):
        return ProceduralContent(
            weights=(cfg.field_weight, cfg.shapes_weight, cfg.texture_weight),
            beta_range=cfg.beta_range,
            max_shapes=cfg.max_shapes,
        )
    if isinstance(cfg, BundledContentConfig):
        names = tuple(cfg.names) if cfg.names else BUNDLED_NAMES
        if split != "all":
            names = holdout_split(names, cfg.val_fraction, "bundled names")[split == "val"]
        return BundledImages(names, cfg.scale_range, cfg.rotate, cfg.flip)
    if isinstance(cfg, FolderContentConfig):
        folder = FolderImages(
            cfg.path, cfg.recursive, cfg.scale_range, cfg.rotate, cfg.flip, cfg.cache_mb
        )
        if split == "all":
            return folder
        keys = holdout_split(folder.keys, cfg.val_fraction, f"image folder {cfg.path}")
        return folder.subset(keys[split == "val"], split)
    raise TypeError(f"not a content config: {type(cfg).__name__}")

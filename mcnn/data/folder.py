"""Two folders of images paired by file-name stem: the way users bring their own training data."""

from __future__ import annotations

import numpy as np
import torch

from mcnn.data.config import FolderDataConfig
from mcnn.data.image_io import ImageFileError, list_images, read_images
from mcnn.data.seeds import example_seed


class FolderPairs:
    """Pairs ``inputs/NAME.*`` with ``targets/NAME.*``; optional random crops seeded per item."""

    def __init__(
        self, pairs: list[tuple[np.ndarray, np.ndarray]], crop: int | None, seed: int = 0
    ) -> None:
        self.pairs = pairs
        self.crop = crop
        self.seed = seed
        self.epoch = 0
        x, y = pairs[0]
        self.in_channels, self.out_channels = x.shape[0], y.shape[0]
        self.scale = y.shape[-1] // x.shape[-1]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.pairs[index]
        if self.crop:
            rng = np.random.default_rng(example_seed(self.seed, "folder", self.epoch, index))
            c, s = self.crop, self.scale
            i = int(rng.integers(0, x.shape[-2] - c + 1))
            j = int(rng.integers(0, x.shape[-1] - c + 1))
            x = x[:, i : i + c, j : j + c]
            y = y[:, i * s : (i + c) * s, j * s : (j + c) * s]
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))


def load_folder_pairs(cfg: FolderDataConfig, seed: int = 0) -> tuple[FolderPairs, FolderPairs]:
    inputs = {p.stem: p for p in list_images(cfg.inputs)}
    targets = {p.stem: p for p in list_images(cfg.targets)}
    names = sorted(inputs.keys() & targets.keys())
    if not names:
        raise ImageFileError(
            f"{cfg.inputs} and {cfg.targets}: no file names in common; pairs are matched by stem"
        )
    if len(names) <= cfg.val_count:
        raise ImageFileError(
            f"{cfg.inputs}: {len(names)} pairs but data.val_count={cfg.val_count}; need more pairs"
        )
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    for n in names:
        x, y = read_images(inputs[n])[0], read_images(targets[n])[0]
        sx, sy = x.shape[-2:], y.shape[-2:]
        if sy[0] % sx[0] or sy[1] % sx[1] or sy[0] // sx[0] != sy[1] // sx[1]:
            raise ImageFileError(
                f"{targets[n]}: size {sy} is not an integer multiple of input {inputs[n]} size {sx}"
            )
        if pairs and (x.shape[0], y.shape[0]) != (pairs[0][0].shape[0], pairs[0][1].shape[0]):
            raise ImageFileError(f"{inputs[n]}: channel count differs from the first pair")
        if cfg.crop and min(sx) < cfg.crop:
            raise ImageFileError(f"{inputs[n]}: size {sx} is smaller than data.crop={cfg.crop}")
        pairs.append((x, y))
    split = len(pairs) - cfg.val_count
    return FolderPairs(pairs[:split], cfg.crop, seed), FolderPairs(pairs[split:], None, seed)

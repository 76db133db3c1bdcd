"""What a run leaves behind for people: TensorBoard scalars and image grids, and a metrics CSV."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

CSV_FIELDS = ["step", "epoch", "elapsed_s", "train_loss", "lr", "val_mae", "val_psnr", "val_ssim"]


class RunLog:
    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.csv_path = self.run_dir / "metrics.csv"
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        new = not self.csv_path.exists()
        self._csv = open(self.csv_path, "a", newline="")  # noqa: SIM115 - open for the run's life
        self._rows = csv.DictWriter(self._csv, fieldnames=CSV_FIELDS)
        if new:
            self._rows.writeheader()
            self._csv.flush()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(k, v, step)

    def images(self, step: int, tag: str, grid: torch.Tensor) -> None:
        """``grid`` is (3, H, W) or (1, H, W) in [0, 1]."""
        if self.writer is not None:
            self.writer.add_image(tag, grid.clamp(0, 1), step)

    def row(self, values: dict[str, Any]) -> None:
        self._rows.writerow({k: values.get(k, "") for k in CSV_FIELDS})
        self._csv.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self._csv.close()


def comparison_grid(inputs: torch.Tensor, preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Rows of input | prediction | truth | |error|, each panel min-max scaled, as (1 or 3, H, W)."""
    import torch.nn.functional as F

    def norm(t: torch.Tensor) -> torch.Tensor:
        t = t.float()
        t = t[:3] if t.shape[0] >= 3 else t[:1]
        lo, hi = t.amin(), t.amax()
        return (t - lo) / (hi - lo).clamp_min(1e-8)

    rows = []
    size = targets.shape[-2:]
    for x, p, y in zip(inputs, preds, targets, strict=True):
        x = F.interpolate(x[None].float(), size=size, mode="nearest")[0]
        panels = [norm(x), norm(p), norm(y), norm((p.float() - y.float()).abs())]
        c = max(t.shape[0] for t in panels)
        rows.append(torch.cat([t.expand(c, -1, -1) for t in panels], dim=-1))
    return torch.cat(rows, dim=-2)

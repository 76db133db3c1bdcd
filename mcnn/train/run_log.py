"""What a run leaves behind for people: TensorBoard scalars and image grids, and a metrics CSV.

The CSV has one row per validation. Its metric columns are per output channel (see
``mcnn.train.metrics``); ``val_psnr_range_c{k}`` states the data range PSNR/SSIM of channel ``k``
used. A resumed run first drops the rows (and TensorBoard events) past the step it resumes from, so
a step that is trained again is not reported twice.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any

import torch

from mcnn.train.metrics import metric_names
from mcnn.utils.atomic import atomic_write_text

log = logging.getLogger(__name__)

BASE_FIELDS = ["step", "epoch", "elapsed_s", "train_loss", "lr"]


def csv_fields(channels: int) -> list[str]:
    """The metrics CSV columns for a network with ``channels`` output channels."""
    return BASE_FIELDS + [f"val_{name}" for name in metric_names(channels)]


def _rows_up_to(path: Path, fields: list[str], last_step: int) -> str:
    """The existing CSV rewritten with ``fields`` and only the rows with step <= ``last_step``."""
    buf = io.StringIO()
    out = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    out.writeheader()
    kept = dropped = 0
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                step = int(row.get("step") or 0)
            except ValueError:
                step = last_step + 1
            if step <= last_step:
                out.writerow({k: row.get(k, "") for k in fields})
                kept += 1
            else:
                dropped += 1
    if dropped:
        log.info("%s: dropped %d row(s) after step %d (they are trained again)", path, dropped, last_step)
    return buf.getvalue()


class RunLog:
    """TensorBoard (optional) and ``metrics.csv`` in ``run_dir``.

    ``resume_step`` None starts both afresh; an int keeps what was logged up to that step.
    """

    def __init__(
        self,
        run_dir: Path,
        tensorboard: bool = True,
        *,
        fields: list[str] | None = None,
        resume_step: int | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.csv_path = self.run_dir / "metrics.csv"
        self.fields = fields or csv_fields(1)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=purge)
        if resume_step is not None and self.csv_path.is_file():
            text = _rows_up_to(self.csv_path, self.fields, resume_step)
        else:
            text = ",".join(self.fields) + "\r\n"
        atomic_write_text(self.csv_path, text)
        self._csv = open(self.csv_path, "a", newline="")  # noqa: SIM115 - open for the run's life
        self._rows = csv.DictWriter(self._csv, fieldnames=self.fields, extrasaction="ignore")

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(k, v, step)

    def images(self, step: int, tag: str, grid: torch.Tensor) -> None:
        """``grid`` is (3, H, W) or (1, H, W) in [0, 1]."""
        if self.writer is not None:
            self.writer.add_image(tag, grid.clamp(0, 1), step)

    def row(self, values: dict[str, Any]) -> None:
        self._rows.writerow({k: values.get(k, "") for k in self.fields})
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

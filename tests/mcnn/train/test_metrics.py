"""Metrics are per output channel: an easy channel cannot hide a poor one."""

import csv
import math

import pytest
import torch

from mcnn.train.metrics import all_metrics
from mcnn.train.run_log import RunLog, csv_fields


def _two_channels():
    g = torch.Generator().manual_seed(0)
    target = torch.zeros(4, 2, 16, 16)
    target[:, 0] = torch.rand(4, 16, 16, generator=g) * 2.0  # phase-like, range ~2
    target[:, 1] = 0.7  # trivial: constant, and predicted exactly
    pred = target.clone()
    pred[:, 0] += 0.1 * torch.randn(4, 16, 16, generator=g)
    return pred, target


def test_each_channel_has_its_own_mae_psnr_ssim_and_range():
    pred, target = _two_channels()
    m = all_metrics(pred, target)
    err0 = (pred[:, 0] - target[:, 0]).abs().mean().item()
    assert m["mae_c0"] == pytest.approx(err0) and m["mae_c1"] == 0
    assert m["mae"] == pytest.approx(err0 / 2)  # the mean over channels
    r0 = (target[:, 0].max() - target[:, 0].min()).item()
    assert m["psnr_range_c0"] == pytest.approx(r0) and m["psnr_range_c1"] == 1.0
    mse0 = ((pred[:, 0] - target[:, 0]) ** 2).mean().item()
    assert m["psnr_c0"] == pytest.approx(10 * math.log10(r0 * r0 / mse0), rel=1e-5)
    assert m["psnr_c1"] == math.inf
    assert m["ssim_c1"] == pytest.approx(1.0, abs=2e-3) and m["ssim_c0"] < m["ssim_c1"]
    assert m["ssim"] == pytest.approx((m["ssim_c0"] + m["ssim_c1"]) / 2)


def test_csv_has_per_channel_columns_and_states_the_psnr_range(tmp_path):
    pred, target = _two_channels()
    m = all_metrics(pred, target)
    log = RunLog(tmp_path, tensorboard=False, fields=csv_fields(2))
    log.row({"step": 1, **{f"val_{k}": v for k, v in m.items()}})
    log.close()
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    for col in ("val_mae", "val_mae_c0", "val_mae_c1", "val_psnr_c0", "val_ssim_c1",
                "val_psnr_range_c0", "val_psnr_range_c1"):
        assert col in rows[0]
    assert float(rows[0]["val_mae_c0"]) == pytest.approx(m["mae_c0"])

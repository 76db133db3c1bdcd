"""Multi-scale MAE, its branch-weight schedules, SSIM and the adversarial terms."""

import pytest
import torch

from mcnn.losses import (
    BranchScheduleConfig,
    BranchWeightSchedule,
    MultiScaleL1Loss,
    PatchDiscriminator,
    SSIMLoss,
    area_reduce,
    discriminator_loss,
    generator_adversarial_loss,
)


def test_area_reduce_is_block_mean():
    t = torch.arange(16.0).reshape(1, 1, 4, 4)
    r = area_reduce(t, (2, 2))
    assert torch.allclose(r, torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))


def test_multiscale_loss_compares_each_output_to_the_reduced_target():
    target = torch.rand(2, 1, 16, 16)
    outputs = [target.clone(), area_reduce(target, (8, 8)) + 0.5, area_reduce(target, (4, 4))]
    total, terms = MultiScaleL1Loss()(outputs, target, [0.5, 0.25, 0.25])
    assert [round(float(t), 6) for t in terms] == [0.0, 0.5, 0.0]
    assert abs(float(total) - 0.125) < 1e-6


def test_equal_weights_by_default_and_normalised():
    s = BranchWeightSchedule(BranchScheduleConfig(), 4, 100)
    assert s(0) == s(99) == [0.25] * 4


def test_coarse_to_fine_starts_coarse_heavy_and_ends_full_resolution_only():
    s = BranchWeightSchedule(BranchScheduleConfig(kind="coarse_to_fine"), 4, 1000)
    w0, wmid, wend = s(0), s(500), s(1000)
    assert w0[3] > w0[2] > w0[1] > w0[0] > 0
    assert wend[0] > 0.99 and all(v < 0.01 for v in wend[1:])
    assert w0[0] < wmid[0] < wend[0]
    assert all(w[0] > 0 for w in (w0, wmid, wend))


def test_linear_schedule_interpolates_and_full_term_never_vanishes():
    cfg = BranchScheduleConfig(kind="linear", start=[0, 1, 1], end=[1, 0, 0], begin_step=10, end_step=20)
    s = BranchWeightSchedule(cfg, 3, 100)
    assert s(0)[0] > 0  # start weight 0 is lifted to keep the full term present
    assert s(15) == pytest.approx([0.5 / 1.5, 0.5 / 1.5, 0.5 / 1.5])
    assert s(30) == pytest.approx([1, 0, 0])


def test_schedule_config_errors_name_the_values():
    with pytest.raises(ValueError, match="end_step=5"):
        BranchScheduleConfig(begin_step=10, end_step=5)
    with pytest.raises(ValueError, match="start"):
        BranchScheduleConfig(start=[-1.0])


def test_ssim_loss_is_zero_for_identical_and_grows_with_noise():
    torch.manual_seed(0)
    y = torch.rand(2, 1, 32, 32)
    loss = SSIMLoss()
    assert float(loss(y, y)) < 1e-5
    assert float(loss(y + 0.3 * torch.randn_like(y), y)) > 0.3


def test_patch_discriminator_and_lsgan_losses():
    d = PatchDiscriminator(1, 1, width=8, layers=2)
    scores = d(torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32))
    assert scores.shape == (2, 1, 8, 8)
    ones, zeros = torch.ones(4), torch.zeros(4)
    assert float(generator_adversarial_loss(ones)) == 0
    assert float(discriminator_loss(ones, zeros)) == 0
    assert float(discriminator_loss(zeros, ones)) == 1


def test_area_reduce_pools_on_the_networks_padded_grid_not_overlapping_windows():
    # 5 px at 1/4: the network's coarse pixels cover [0, 4) and [4, 8) of the replicate-padded row
    t = torch.tensor([[[[0.0, 1.0, 2.0, 3.0, 4.0]]]]).expand(1, 1, 4, 5)
    r = area_reduce(t, (1, 2))
    assert torch.allclose(r, torch.tensor([[[[1.5, 4.0]]]]))  # adaptive pooling gave [1.0, 3.0]


def test_area_reduce_matches_a_720_px_output_at_one_32nd():
    t = torch.rand(1, 2, 720, 64)
    r = area_reduce(t, (23, 2))
    padded = torch.cat([t, t[:, :, -1:].expand(1, 2, 16, 64)], dim=2)  # 720 -> 736 = 23 * 32
    assert torch.allclose(r, padded.reshape(1, 2, 23, 32, 2, 32).mean(dim=(3, 5)), atol=1e-6)
    with pytest.raises(ValueError, match="power of 2"):
        area_reduce(t, (24, 2))

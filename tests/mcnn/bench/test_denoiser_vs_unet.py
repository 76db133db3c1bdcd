"""The paired denoiser / U-Net benchmark: matched parameter counts, pix2pix's layout for the
U-Net, and a tiny end-to-end run whose JSON carries every figure."""

import math
from pathlib import Path

import pytest
import torch

from mcnn.bench.denoiser_vs_unet import (
    DenoiserVsUnetSettings,
    denoiser_config,
    match_unet_width,
    run_denoiser_vs_unet,
    train_config,
    trainable_parameters,
    unet_config,
)
from mcnn.models import MCNN, count_parameters


@pytest.mark.parametrize("width_scale", [0.125, 0.25, 1.0])
def test_unet_width_is_searched_to_match_the_denoisers_parameters_within_5_percent(width_scale):
    den = denoiser_config(DenoiserVsUnetSettings(width_scale=width_scale))
    unet = match_unet_width(den)
    n_den, n_unet = trainable_parameters(den), trainable_parameters(unet)
    assert abs(n_unet - n_den) / n_den < 0.05
    # pix2pix: concatenated skips, stride-2 first conv, no branches, no low-pass front
    assert (unet.skip, unet.first_conv, unet.branches, unet.lowpass) == (
        "concat", "stride2", 0, None)
    assert unet.depth == den.depth and unet.kernel_size == den.kernel_size


def test_meta_parameter_count_equals_the_built_network():
    den = denoiser_config(DenoiserVsUnetSettings(width_scale=0.125))
    assert trainable_parameters(den) == count_parameters(MCNN(den))


def test_denoiser_is_the_preset_with_scaled_widths():
    den = denoiser_config(DenoiserVsUnetSettings(width_scale=0.5))
    assert (den.base_width, den.max_width, den.first_conv, den.skip) == (32, 256, "stride2", "add")
    assert den.branches == 7 and den.lowpass is not None
    bare = denoiser_config(DenoiserVsUnetSettings(width_scale=0.5, branches=0))
    assert bare.branches == 0 and bare.model_dump(exclude={"branches"}) == den.model_dump(
        exclude={"branches"})
    with pytest.raises(ValueError, match="branches"):
        denoiser_config(DenoiserVsUnetSettings(branches=12))  # more than depth + 1 outputs


def test_tiny_paired_run_reports_params_speeds_ratio_and_psnrs():
    torch.manual_seed(0)
    s = DenoiserVsUnetSettings(width_scale=0.125, sizes_px=[32], seconds=0.05, warmup=0,
                               rounds=1, train_steps=2, train_size_px=32, batch_size=2,
                               val_examples=2)
    r = run_denoiser_vs_unet(s)
    assert r["benchmark"] == "denoiser-vs-unet" and r["threads"] >= 1 and "cpu" in r
    n = {k: r["networks"][k]["parameters"] for k in ("denoiser", "unet")}
    assert abs(n["unet"] - n["denoiser"]) / n["denoiser"] < 0.05
    assert r["parameter_mismatch"] == pytest.approx(abs(n["unet"] - n["denoiser"]) / n["denoiser"],
                                                    abs=1e-4)
    e = r["speed"]["32"]
    for k in ("denoiser", "unet"):
        assert e[k]["ms_p10"] <= e[k]["ms_median"] <= e[k]["ms_p90"] and e[k]["repeats"] >= 1
    assert e["speed_ratio"] == pytest.approx(e["unet"]["ms_median"] / e["denoiser"]["ms_median"],
                                             rel=1e-3)
    t = r["training"]
    assert t["steps"] == 2 and t["held_out_frames"] == 2 and t["simulate_s"] > 0
    assert all(t[k]["train_s"] > 0 for k in ("denoiser", "unet"))
    assert all(math.isfinite(t[k]["psnr_db"]) for k in ("denoiser", "unet"))
    assert t["psnr_gain_db"] == pytest.approx(t["denoiser"]["psnr_db"] - t["unet"]["psnr_db"],
                                              abs=2e-3)


def test_side_outputs_fade_over_the_asked_fraction_of_the_run():
    s = DenoiserVsUnetSettings(train_steps=1500, branch_decay_fraction=0.33)
    den = denoiser_config(s)
    sched = train_config(s, den, "d", Path("unused")).loss.branch_schedule
    assert (sched.kind, sched.end, sched.end_step) == ("linear", [1.0, 0.0], 495)
    whole = train_config(DenoiserVsUnetSettings(train_steps=1500), den, "d", Path("unused"))
    assert whole.loss.branch_schedule.end_step == 1500
    unet = train_config(s, unet_config(den, 8, 64), "u", Path("unused"))
    assert unet.loss.branch_schedule.kind == "constant"  # no side outputs to fade


def test_no_training_when_steps_is_zero_and_a_bad_width_is_a_one_line_error():
    s = DenoiserVsUnetSettings(width_scale=0.125, sizes_px=[16], seconds=0.01, warmup=0,
                               rounds=1, train_steps=0)
    assert run_denoiser_vs_unet(s)["training"] is None
    with pytest.raises(ValueError, match="param_tolerance") as info:
        run_denoiser_vs_unet(DenoiserVsUnetSettings(width_scale=0.125, param_tolerance=1e-6))
    assert "\n" not in str(info.value)

"""The TIE front: the same phase as the numpy FFT-TIE solver, built from the data's physics, and
part of the model everywhere a model goes (meta device, TorchScript, checkpoints)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mcnn.models import MCNN, ModelConfig
from mcnn.models.config import TieFrontConfig
from mcnn.models.tie_front import TieFront
from mcnn.phase.tie import fft_tie
from mcnn.physics import DefocusConfig, DefocusSeriesSimulator, ProceduralContent
from mcnn.train.config import TrainConfig

PHYSICS = {"wavelength_um": 0.532, "pixel_size_um": 1.0, "medium_index": 1.0}


def planes(defocus_um, size=(40, 48), seed=0, amplitude_contrast=0.0):
    cfg = DefocusConfig(defocus_um=defocus_um, phase_max_rad=1.0,
                        amplitude_contrast=amplitude_contrast)
    return DefocusSeriesSimulator(cfg).sample(2, size, torch.Generator().manual_seed(seed),
                                              ProceduralContent())


def test_symmetric_pair_gives_the_numpy_fft_tie_phase():
    x, _ = planes([-20.0, 20.0])
    front = TieFront(2, TieFrontConfig(defocus_um=[-20.0, 20.0], regularization=0.3, **PHYSICS))
    phi = front.phase(x)
    for e in range(2):
        ref = fft_tie(x[e].numpy(), (-20.0, 20.0), 0.532, 1.0, regularization=0.3, uniform=True)
        np.testing.assert_allclose(phi[e, 0].numpy(), ref, atol=1e-5 * np.abs(ref).max())


def test_one_plane_uses_the_uniform_focus_assumption_and_finds_the_phase():
    x, y = planes([30.0])
    phi = TieFront(1, TieFrontConfig(defocus_um=[30.0], **PHYSICS)).phase(x)
    truth = y[:, :1] - y[:, :1].mean(dim=(2, 3), keepdim=True)
    err = (phi - truth).pow(2).mean().sqrt()
    assert err < 0.5 * truth.std()  # a first guess, far better than zero phase
    # -z flips the sign of dI/dz: the same object at -30 um gives the same phase
    x_minus, _ = planes([-30.0])
    phi_minus = TieFront(1, TieFrontConfig(defocus_um=[-30.0], **PHYSICS)).phase(x_minus)
    assert (phi_minus - truth).pow(2).mean().sqrt() < 0.5 * truth.std()


def test_front_adds_one_channel_and_the_model_scripts_and_builds_on_meta():
    cfg = ModelConfig(in_channels=2, out_channels=1, depth=2, base_width=4, max_width=8,
                      branches=1, tie_front=TieFrontConfig(defocus_um=[-5.0, 5.0], **PHYSICS))
    torch.manual_seed(0)
    model = MCNN(cfg).eval()
    assert model.stem[0].in_channels == 3
    x = 1 + 0.1 * torch.rand(1, 2, 21, 30)
    scripted = torch.jit.script(model)
    torch.testing.assert_close(scripted(x), model(x))
    with torch.device("meta"):
        MCNN(cfg)


def test_train_config_fills_the_front_from_the_simulator_and_refuses_other_physics():
    data = {"kind": "simulated", "simulator": {"name": "defocus", "defocus_um": [-50.0, 50.0],
                                               "wavelength_um": 0.633, "pixel_size_um": 2.0}}
    cfg = TrainConfig.model_validate({"model": {"in_channels": 2, "tie_front": {}}, "data": data})
    front = cfg.model.tie_front
    assert front is not None
    assert (front.defocus_um, front.wavelength_um, front.pixel_size_um) == ([-50.0, 50.0], 0.633,
                                                                           2.0)
    with pytest.raises(ValueError, match=r"model.tie_front.wavelength_um=0.532 but "
                                         r"data.simulator.wavelength_um=0.633"):
        TrainConfig.model_validate({"model": {"in_channels": 2,
                                              "tie_front": {"wavelength_um": 0.532}},
                                    "data": data})


def test_front_without_physics_or_with_only_in_focus_planes_is_refused():
    with pytest.raises(ValueError, match="wavelength_um, pixel_size_um, medium_index not set"):
        MCNN(ModelConfig(in_channels=1, tie_front=TieFrontConfig(defocus_um=[5.0])))
    with pytest.raises(ValueError, match="needs a plane at non-zero defocus"):
        TieFrontConfig(defocus_um=[0.0])
    with pytest.raises(ValueError, match="3 distances but in_channels=2"):
        ModelConfig(in_channels=2, tie_front=TieFrontConfig(defocus_um=[-1.0, 0.0, 1.0]))

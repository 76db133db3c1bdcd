"""Configs: discriminated unions pick the right simulator/content; bad configs fail loudly."""

import pytest
import torch
from pydantic import TypeAdapter, ValidationError

from mcnn.physics import (
    BundledImages,
    ContentConfig,
    DefocusSeriesSimulator,
    FolderImages,
    LaplacianPhaseSimulator,
    ProceduralContent,
    ScreenRigSimulator,
    SimulatorConfig,
    StemAdfSimulator,
    build_content,
    build_simulator,
)

SIMULATORS = TypeAdapter(SimulatorConfig)
CONTENT = TypeAdapter(ContentConfig)


@pytest.mark.parametrize(
    ("raw", "cls", "channels"),
    [
        ({"name": "laplacian"}, LaplacianPhaseSimulator, (1, 1, 1)),
        ({"name": "defocus", "defocus_um": [-5, 5]}, DefocusSeriesSimulator, (2, 1, 1)),
        ({"name": "defocus", "predict_amplitude": True}, DefocusSeriesSimulator, (3, 2, 1)),
        ({"name": "stem"}, StemAdfSimulator, (1, 1, 1)),
        ({"name": "screen_rig", "scale": 3}, ScreenRigSimulator, (3, 3, 3)),
    ],
)
def test_simulator_config_builds_the_named_simulator(raw, cls, channels) -> None:
    sim = build_simulator(SIMULATORS.validate_python(raw))
    assert isinstance(sim, cls)
    assert (sim.in_channels, sim.out_channels, sim.scale) == channels
    inputs, targets = sim.sample(2, (16, 24), torch.Generator().manual_seed(0), ProceduralContent())
    assert inputs.shape == (2, channels[0], 16, 24)
    assert targets.shape == (2, channels[1], 16 * channels[2], 24 * channels[2])
    assert torch.isfinite(inputs).all() and torch.isfinite(targets).all()


def test_simulator_configs_round_trip_through_json() -> None:
    cfg = SIMULATORS.validate_python({"name": "stem", "dose_e_per_px_range": [2, 3]})
    again = SIMULATORS.validate_json(SIMULATORS.dump_json(cfg))
    assert again == cfg and again.dose_e_per_px_range == (2.0, 3.0)


@pytest.mark.parametrize(
    "raw",
    [
        {"name": "laplacian", "noise": 0.1},  # unknown field
        {"name": "holography"},  # unknown simulator
        {"name": "laplacian", "noise_std": -1},  # out of bounds
        {"name": "screen_rig", "scale": 0},
    ],
)
def test_bad_simulator_configs_are_rejected(raw) -> None:
    with pytest.raises(ValidationError):
        SIMULATORS.validate_python(raw)


def test_content_config_builds_each_kind(tmp_path) -> None:
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((8, 8), np.uint8))
    assert isinstance(
        build_content(CONTENT.validate_python({"kind": "procedural"})), ProceduralContent
    )
    raw = {"kind": "bundled", "names": ["camera", "moon"]}
    bundled = build_content(CONTENT.validate_python(raw))
    assert isinstance(bundled, BundledImages) and bundled.names == ("camera", "moon")
    folder = build_content(CONTENT.validate_python({"kind": "folder", "path": str(tmp_path)}))
    assert isinstance(folder, FolderImages) and len(folder) == 1


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"kind": "bundled", "names": ["lena"]}, "unknown bundled images"),
        ({"kind": "bundled", "scale_range": [2, 1]}, "scale_range"),
        (
            {"kind": "procedural", "field_weight": 0, "shapes_weight": 0, "texture_weight": 0},
            "all 0",
        ),
        ({"kind": "folder"}, "path"),
        ({"kind": "procedural", "colour": True}, "colour"),
    ],
)
def test_bad_content_configs_name_the_problem(raw, message) -> None:
    with pytest.raises(ValidationError, match=message):
        CONTENT.validate_python(raw)


def test_importing_the_configs_loads_no_implementation() -> None:
    import subprocess
    import sys

    implementations = [
        "mcnn.physics.build", "mcnn.physics.defocus", "mcnn.physics.stem",
        "mcnn.physics.laplacian", "mcnn.physics.screen_rig", "mcnn.physics.procedural",
        "mcnn.physics.images", "mcnn.physics.noise", "mcnn.physics.functional",
        "mcnn.data.simulated", "mcnn.data.folder", "mcnn.data.image_io", "mcnn.data.build",
    ]
    code = (
        "import sys; import mcnn.data.config, mcnn.physics.config; "
        "from mcnn.data.config import DataConfig, SimulatedDataConfig; "
        "from mcnn.physics import SimulatorConfig, ContentConfig, StemConfig; "
        f"print([m for m in {implementations!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_bundled_config_needs_two_images_to_hold_one_out() -> None:
    with pytest.raises(ValidationError, match="at least 2 images"):
        CONTENT.validate_python({"kind": "bundled", "names": ["camera"]})
    with pytest.raises(ValidationError, match="val_fraction"):
        CONTENT.validate_python({"kind": "bundled", "val_fraction": 1.0})
    assert CONTENT.validate_python({"kind": "folder", "path": "x"}).val_fraction == 0.2

"""Device configs: the command-line shorthand parses into typed models, (H, W) from WxH once."""

from __future__ import annotations

import pytest

from acquire.config import (
    FileCameraConfig,
    MonitorScreenConfig,
    OpenCVCameraConfig,
    RecordConfig,
    RegionScreenConfig,
    SimRigConfig,
    VirtualScreenConfig,
)
from acquire.sources.screen import ScreenSource, VirtualScreen
from acquire.sources.sim import SimulatedRig
from acquire.sources.spec import SpecError, build_camera, build_screen
from mcnn.config_io import ConfigError, validate


@pytest.mark.parametrize(("text", "expected"), [
    ("0", OpenCVCameraConfig(device=0)),
    (2, OpenCVCameraConfig(device=2)),
    ("/dev/video2", OpenCVCameraConfig(device="/dev/video2")),
    ("rtsp://cam/stream", OpenCVCameraConfig(device="rtsp://cam/stream")),
    ("file:clip.mp4", FileCameraConfig(path="clip.mp4")),
    ("sim", SimRigConfig()),
    ("sim:latency_ms=80,fps=30,size=1280x720,drift=0,noise=0.02,seed=4,mirror=0",
     SimRigConfig(latency_ms=80, fps=30, size_hw=(720, 1280), drift=0, noise=0.02, seed=4,
                  mirror=False)),
])
def test_camera_shorthand_parses_into_the_typed_model(text, expected):
    assert RecordConfig(camera=text).camera == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("1", MonitorScreenConfig(number=1)),
    (2, MonitorScreenConfig(number=2)),
    ("region:10,20,300,200", RegionScreenConfig(x=10, y=20, width=300, height=200)),
    ("virtual", VirtualScreenConfig()),
    ("virtual:640x360", VirtualScreenConfig(size_hw=(360, 640))),
])
def test_screen_shorthand_parses_into_the_typed_model(text, expected):
    assert RecordConfig(screen=text).screen == expected


def test_a_saved_config_round_trips_and_old_string_configs_still_load():
    old = {"camera": "sim:size=160x90,latency_ms=40", "screen": "virtual:128x72", "rate_hz": 20}
    config = validate(RecordConfig, old)
    assert config.camera.size_hw == (90, 160) and config.screen.size_hw == (72, 128)
    dumped = config.model_dump(mode="json")
    assert dumped["camera"]["kind"] == "sim" and dumped["camera"]["size_hw"] == [90, 160]
    assert validate(RecordConfig, dumped) == config  # stored (H, W) is not converted again


@pytest.mark.parametrize(("data", "message"), [
    ({"camera": "sim:frobs=2"}, "f.yaml: camera.sim.frobs: unknown field"),
    ({"camera": "sim:size=12"}, "f.yaml: camera: sim size must look like WIDTHxHEIGHT"),
    ({"camera": "nonsense"}, "f.yaml: camera: unknown camera 'nonsense'"),
    ({"screen": "region:1,2"}, "f.yaml: screen: screen region must be region:x,y,w,h"),
    ({"screen": {"kind": "virtual", "size_hw": [4, 640]}}, "f.yaml: screen.virtual.size_hw.0: "),
    ({"camera": {"kind": "sim", "size_hw": [90, 160], "door_roi": [0, 0, 200, 50]}},
     "f.yaml: camera.sim: door_roi (0, 0, 200, 50) does not fit size_hw (90, 160)"),
])
def test_bad_devices_are_one_line_naming_file_and_field(data, message):
    with pytest.raises(ConfigError) as info:
        validate(RecordConfig, data, "f.yaml")
    text = str(info.value)
    assert len(text.splitlines()) == 1
    assert text.startswith(message), text


def test_built_devices_have_the_configured_height_and_width():
    screen = build_screen("virtual:64x36")
    assert isinstance(screen, VirtualScreen) and screen.size_hw == (36, 64)
    assert screen.read().image.shape == (36, 64, 3)
    rig = build_camera("sim:size=96x40,fps=60,noise=0", screen)
    assert isinstance(rig, SimulatedRig) and rig.size_hw == (40, 96)
    with screen, rig:
        assert rig.read().image.shape == (40, 96, 3)
    assert rig.info()["size_hw"] == [40, 96] and rig.info()["latency_ms"] == 80.0
    assert isinstance(build_screen(MonitorScreenConfig(number=2)), ScreenSource)
    with pytest.raises(SpecError, match="does not exist"):
        build_camera("file:/no/such/clip.mp4", screen)

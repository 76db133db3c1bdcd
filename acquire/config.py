"""Validated settings of a recording and of the devices it uses.

Devices are discriminated unions on ``kind``: a camera is ``opencv``, ``file`` or ``sim`` (the
simulated rig), a screen is ``monitor``, ``region`` or ``virtual``. The short strings users type
(``0``, ``/dev/video2``, ``file:clip.mp4``, ``sim:latency_ms=80,size=1280x720``, ``1``,
``region:x,y,w,h``, ``virtual:640x360``) parse into these models, on the command line and in config
files alike. Sizes are ``(height, width)`` in every model; the ``WxH`` text of the shorthand is
width x height as users type it and is converted once, here.

This module holds no device code (configs never import implementations). Errors are worded by
:mod:`mcnn.config_io` (``field.path: what was wrong``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

SizeHW = tuple[Annotated[int, Field(ge=8, le=16384)], Annotated[int, Field(ge=8, le=16384)]]

MAX_GENERATED_PIXELS = 4096 * 4096
"""Frames this toolkit makes itself (simulated camera, virtual screen, stimuli) are at most this
large: a mistyped 100000x100000 is refused before 28-149 GiB are asked for."""


def _generated_size(size: tuple[int, int]) -> tuple[int, int]:
    if size[0] * size[1] > MAX_GENERATED_PIXELS:
        raise ValueError(f"{size[0]}x{size[1]} (height x width) is more than the "
                         f"{MAX_GENERATED_PIXELS:,} pixels a generated frame may have")
    return size


GeneratedSizeHW = Annotated[SizeHW, AfterValidator(_generated_size)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def parse_wxh(text: str, what: str) -> tuple[int, int]:
    """``"1280x720"`` (width x height, as users type it) -> ``(720, 1280)`` (height, width)."""
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ValueError(f"{what} must look like WIDTHxHEIGHT (e.g. 1280x720), got {text!r}") \
            from None
    return h, w


# -- cameras ----------------------------------------------------------------------------------
class OpenCVCameraConfig(_Strict):
    """A camera OpenCV opens: an index, a device path, a stream URL or a video file."""

    kind: Literal["opencv"] = "opencv"
    device: int | str = Field(default=0, description="Index (0), /dev/videoN, rtsp://... URL or "
                              "a video file.")
    size_hw: SizeHW | None = Field(default=None, description="Requested (height, width); the "
                                   "camera must deliver exactly this.")
    fps: float | None = Field(default=None, gt=0, le=1000, description="Requested frames/s.")


class FileCameraConfig(_Strict):
    """A video file or an image folder replayed as if it were a camera."""

    kind: Literal["file"] = "file"
    path: Path = Field(description="Video file or folder of images.")
    fps: float | None = Field(default=None, gt=0, le=1000,
                              description="Replay rate (default: the file's own, 30 for a folder).")


class SimRigConfig(_Strict):
    """The simulated rig: a camera filming a door lit by the chosen screen (no hardware needed)."""

    kind: Literal["sim"] = "sim"
    latency_ms: float = Field(default=80.0, ge=0, le=5000,
                              description="Display-to-camera latency the rig simulates.")
    fps: float = Field(default=30.0, gt=0, le=1000, description="Camera frames/s.")
    size_hw: GeneratedSizeHW = Field(default=(720, 1280),
                                     description="Camera frame (height, width).")
    drift: float = Field(default=0.03, ge=0, le=1, description="Auto-exposure gain drift, "
                         "relative amplitude of a sinusoid.")
    drift_period_s: float = Field(default=20.0, gt=0, description="Period of that drift.")
    noise: float = Field(default=0.01, ge=0, le=1, description="Camera noise std, fraction of "
                         "full scale.")
    seed: int = Field(default=0, ge=0, description="Door texture and noise seed.")
    mirror: bool = Field(default=True, description="The camera sees the screen mirrored.")
    transport: Literal["easy", "realistic"] = Field(
        default="easy", description="Door light transport: easy (blurs) or realistic (a "
        "Lambertian door lit by the screen as an area light).")
    door_roi: tuple[int, int, int, int] | None = Field(
        default=None, description="Door box (x, y, width, height) in camera pixels (default: "
        "the central 60 % x 70 %).")

    @model_validator(mode="after")
    def _door_fits(self) -> SimRigConfig:
        if self.door_roi is not None:
            x, y, w, h = self.door_roi
            fh, fw = self.size_hw
            if x < 0 or y < 0 or w < 8 or h < 8 or x + w > fw or y + h > fh:
                raise ValueError(f"door_roi {self.door_roi} does not fit size_hw {self.size_hw}")
        return self


def parse_camera(value: Any) -> Any:
    """The camera shorthand -> a dict for the union; anything else passes through unchanged."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return value
    if isinstance(value, int):
        return {"kind": "opencv", "device": value}
    spec = value.strip()
    if spec == "sim" or spec.startswith("sim:"):
        out: dict[str, Any] = {"kind": "sim"}
        for part in filter(None, spec[4:].split(",")):
            key, sep, text = part.partition("=")
            key, text = key.strip(), text.strip()
            if not sep:
                raise ValueError(f"sim camera: expected key=value, got {part!r}")
            if key == "size":
                out["size_hw"] = parse_wxh(text, "sim size")
            elif key == "mirror":
                out["mirror"] = text.lower() not in ("0", "false", "no")
            else:
                out[key] = text  # pydantic converts and names an unknown key
        return out
    if spec.startswith("file:"):
        return {"kind": "file", "path": spec[len("file:"):]}
    if spec.isdigit():
        return {"kind": "opencv", "device": int(spec)}
    if "://" in spec or spec.startswith("/dev/") or Path(spec).exists():
        return {"kind": "opencv", "device": spec}
    raise ValueError(f"unknown camera {spec!r}: use an index (0), /dev/videoN, a URL, file:PATH "
                     "or sim[:key=value,...]")


CameraConfig = Annotated[
    OpenCVCameraConfig | FileCameraConfig | SimRigConfig,
    Field(discriminator="kind"),
    BeforeValidator(parse_camera),
]


# -- screens ----------------------------------------------------------------------------------
class MonitorScreenConfig(_Strict):
    """A whole monitor of the X display (mss numbering: 1 = first, 0 = all)."""

    kind: Literal["monitor"] = "monitor"
    number: int = Field(default=1, ge=0, description="1 = first monitor, 0 = all of them.")


class RegionScreenConfig(_Strict):
    """A rectangle of the X display, in screen pixels."""

    kind: Literal["region"] = "region"
    x: int = Field(ge=0)
    y: int = Field(ge=0)
    width: int = Field(ge=1)
    height: int = Field(ge=1)


class VirtualScreenConfig(_Strict):
    """An in-memory screen: no display needed (passive mode plays a generated film on it)."""

    kind: Literal["virtual"] = "virtual"
    size_hw: GeneratedSizeHW = Field(default=(360, 640), description="(height, width) in pixels.")


def parse_screen(value: Any) -> Any:
    """The screen shorthand -> a dict for the union; anything else passes through unchanged."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return value
    if isinstance(value, int):
        return {"kind": "monitor", "number": value}
    spec = value.strip()
    if spec == "virtual" or spec.startswith("virtual:"):
        size = spec[len("virtual:"):]
        return {"kind": "virtual", **({"size_hw": parse_wxh(size, "virtual screen size")}
                                      if size else {})}
    if spec.startswith("region:"):
        try:
            x, y, w, h = (int(v) for v in spec[len("region:"):].split(","))
        except ValueError:
            raise ValueError(f"screen region must be region:x,y,w,h, got {spec!r}") from None
        return {"kind": "region", "x": x, "y": y, "width": w, "height": h}
    if spec.isdigit():
        return {"kind": "monitor", "number": int(spec)}
    raise ValueError(f"unknown screen {spec!r}: use a monitor number, region:x,y,w,h or "
                     "virtual[:WxH]")


ScreenConfig = Annotated[
    MonitorScreenConfig | RegionScreenConfig | VirtualScreenConfig,
    Field(discriminator="kind"),
    BeforeValidator(parse_screen),
]


class DevicesConfig(_Strict):
    """A camera and a screen on their own (what ``calibrate`` needs)."""

    camera: CameraConfig = Field(default_factory=OpenCVCameraConfig,
                                 description="Camera (shorthand: 0, /dev/video2, URL, "
                                 "file:PATH, sim:key=value,...).")
    screen: ScreenConfig = Field(default_factory=MonitorScreenConfig,
                                 description="Screen (shorthand: 1, region:x,y,w,h, "
                                 "virtual:WxH).")


# -- a recording ------------------------------------------------------------------------------
class RecordConfig(DevicesConfig):
    """How to record: which devices, how fast, for how long, where, and how to store frames."""

    version: Literal[1] = 1
    mode: Literal["passive", "active"] = "passive"
    rate_hz: float = Field(default=30.0, gt=0, le=240, description="Target pairs per second.")
    duration_s: float | None = Field(default=None, gt=0, description="Stop after this long.")
    pairs: int | None = Field(default=None, ge=1, description="Stop after this many pairs.")
    out: Path = Field(default=Path("recordings"), description="Parent folder of recordings.")
    name: str | None = Field(default=None, description="Recording folder name (default: time).")
    calibration: Path | None = Field(default=None, description="calibration.json to apply.")
    latency_ms: float | None = Field(default=None, ge=0, le=5000,
                                     description="Override the calibrated latency.")
    settle_ms: float = Field(default=0.0, ge=0, le=5000,
                             description="Active mode: extra wait after the latency.")
    stimulus: str = Field(default="generated", description="Active mode: 'generated', an image "
                          "folder or a video file.")
    stimulus_size_hw: GeneratedSizeHW = Field(default=(360, 640),
                                     description="Generated stimulus (height, width).")
    screen_hz: float | None = Field(default=None, gt=0, le=480,
                                    description="Passive: screen grabs/s (default 2 x rate).")
    writers: int = Field(default=2, ge=1, le=16)
    queue: int = Field(default=64, ge=1, le=4096, description="Pairs waiting for the writers.")
    format: Literal["tiff", "png"] = Field(default="tiff", description="Lossless frame files.")
    max_skew_ms: float = Field(default=25.0, gt=0, description="Flag pairs skewed beyond this.")
    seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> RecordConfig:
        if self.mode == "passive" and self.screen_hz is not None and self.screen_hz < self.rate_hz:
            raise ValueError(f"screen_hz ({self.screen_hz}) must be >= rate_hz ({self.rate_hz})")
        return self

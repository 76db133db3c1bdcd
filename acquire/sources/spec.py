"""Turn device configs (:mod:`acquire.config`) into sources, not yet opened.

The short strings of the command line (``0``, ``sim:latency_ms=80``, ``virtual:640x360``...) are
parsed by the config models themselves; this module only builds what a validated model describes.
Microscope frame files have their own short strings, ``series:<path>`` (a file, stack or folder)
and ``watch:<folder>`` (a folder a microscope is writing into), built by :func:`build_frame_source`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from acquire.config import (
    CameraConfig,
    FileCameraConfig,
    MonitorScreenConfig,
    OpenCVCameraConfig,
    RegionScreenConfig,
    ScreenConfig,
    SimRigConfig,
    VirtualScreenConfig,
)
from acquire.sources.base import Source
from acquire.sources.screen import ScreenSource, VirtualScreen
from acquire.sources.series import FrameSeriesSource


class SpecError(ValueError):
    """A device the user named cannot be used as described."""


def _as_model(adapter: TypeAdapter[Any], value: Any) -> Any:
    from pydantic import ValidationError

    from mcnn.config_io import format_validation_error

    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc).replace("\n", "; ")) from None


_CAMERA = TypeAdapter(CameraConfig)
_SCREEN = TypeAdapter(ScreenConfig)


def build_screen(config: ScreenConfig | str | int) -> ScreenSource | VirtualScreen:
    """A screen source (not yet opened); a shorthand string is parsed first."""
    config = _as_model(_SCREEN, config)
    if isinstance(config, VirtualScreenConfig):
        return VirtualScreen(config.size_hw)
    if isinstance(config, RegionScreenConfig):
        return ScreenSource(region=(config.x, config.y, config.width, config.height))
    assert isinstance(config, MonitorScreenConfig)
    return ScreenSource(monitor=config.number)


def build_camera(config: CameraConfig | str | int, screen: ScreenSource | VirtualScreen) -> Source:
    """A camera source (not yet opened); ``sim`` watches ``screen`` (through its own mss handle)."""
    config = _as_model(_CAMERA, config)
    if isinstance(config, SimRigConfig):
        from acquire.sources.sim import SimulatedRig

        watched = screen if isinstance(screen, VirtualScreen) else ScreenSource(
            screen.monitor, screen.region)
        return SimulatedRig(watched, config)
    if isinstance(config, FileCameraConfig):
        from acquire.sources.file import FileSource

        if not config.path.exists():
            raise SpecError(f"camera file {config.path} does not exist")
        return FileSource(config.path, fps=config.fps)
    assert isinstance(config, OpenCVCameraConfig)
    from acquire.sources.camera import CameraSource

    return CameraSource(config.device, size_hw=config.size_hw, fps=config.fps)


FRAME_SOURCE_KINDS = ("series", "watch")


def is_frame_source_spec(spec: str) -> bool:
    """``series:...`` or ``watch:...``."""
    return spec.partition(":")[0] in FRAME_SOURCE_KINDS and ":" in spec


def build_frame_source(spec: str, *, fps: float | None = 10.0, loop: bool = False,
                       existing: bool = True) -> FrameSeriesSource:
    """``series:<path>`` -> the frames of a file, stack or folder (``fps=None``: every frame, as
    fast as read; ``loop``: start again); ``watch:<folder>`` -> that folder's frames, then each new
    file once a microscope has finished writing it (``existing=False``: new files only). Not yet
    opened; a missing file or folder is a :class:`SpecError`."""
    kind, sep, text = spec.strip().partition(":")
    if not sep or kind not in FRAME_SOURCE_KINDS or not text:
        raise SpecError(f"frame source {spec!r}: expected series:<file or folder> or "
                        "watch:<folder>")
    path = Path(text).expanduser()
    if kind == "watch":
        if not path.is_dir():
            raise SpecError(f"watch:{text}: no such folder to watch")
        return FrameSeriesSource(path, fps=fps, loop=loop, watch=True, existing=existing)
    if not Path(text.split("#", 1)[0]).expanduser().exists():
        raise SpecError(f"series:{text}: no such file or folder")
    return FrameSeriesSource(path, fps=fps, loop=loop)

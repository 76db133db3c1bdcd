"""Turn the short device specs of the command line into sources.

Camera: ``0`` (index), ``/dev/video2``, ``rtsp://...``/``http://...``, ``file:clip.mp4`` or
``file:frames/`` (replayed at their own rate), a path to an existing video, ``sim`` or
``sim:latency_ms=80,fps=30,size=1280x720,drift=0.03,noise=0.01,seed=0`` (the simulated rig filming
the door lit by the chosen screen).
Screen: ``1`` (mss monitor number), ``region:x,y,w,h``, ``virtual`` or ``virtual:640x360`` (an
in-memory screen, no display needed; in passive mode it plays a generated film).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acquire.sources.base import Source
from acquire.sources.screen import ScreenSource, VirtualScreen


class SpecError(ValueError):
    """A device spec the user typed cannot be understood."""


def _size(text: str, what: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SpecError(f"{what} must look like 1280x720, got {text!r}") from None
    if w < 8 or h < 8:
        raise SpecError(f"{what} must be at least 8x8, got {text!r}")
    return w, h


def parse_options(text: str, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, text.split(",")):
        key, sep, value = part.partition("=")
        if not sep:
            raise SpecError(f"{what}: expected key=value, got {part!r}")
        out[key.strip()] = value.strip()
    return out


def build_screen(spec: str) -> ScreenSource | VirtualScreen:
    """A screen source (not yet opened)."""
    spec = spec.strip()
    if spec.startswith("virtual"):
        _, _, size = spec.partition(":")
        return VirtualScreen(_size(size, "virtual screen size") if size else (640, 360))
    if spec.startswith("region:"):
        try:
            x, y, w, h = (int(v) for v in spec[len("region:"):].split(","))
        except ValueError:
            raise SpecError(f"screen region must be region:x,y,w,h, got {spec!r}") from None
        return ScreenSource(region=(x, y, w, h))
    if spec.isdigit():
        return ScreenSource(monitor=int(spec))
    raise SpecError(f"unknown screen {spec!r}: use a monitor number, region:x,y,w,h or virtual")


_SIM_KEYS = {"latency_ms": float, "fps": float, "drift": float, "drift_period_s": float,
             "noise": float, "seed": int, "size": str, "mirror": int}


def build_camera(spec: str, screen: ScreenSource | VirtualScreen, *,
                 size: tuple[int, int] | None = None, fps: float | None = None) -> Source:
    """A camera source (not yet opened); ``sim`` watches ``screen`` (its own mss handle)."""
    spec = spec.strip()
    if spec == "sim" or spec.startswith("sim:"):
        opts = parse_options(spec[4:], "sim camera")
        unknown = set(opts) - set(_SIM_KEYS)
        if unknown:
            raise SpecError(f"sim camera: unknown option(s) {sorted(unknown)}; known: "
                            f"{sorted(_SIM_KEYS)}")
        try:
            kw: dict[str, Any] = {k: _SIM_KEYS[k](v) for k, v in opts.items() if k != "size"}
        except ValueError as exc:
            raise SpecError(f"sim camera: {exc}") from None
        from acquire.sources.sim import SimulatedRig

        watched = screen if isinstance(screen, VirtualScreen) else ScreenSource(
            screen.monitor, screen.region)
        return SimulatedRig(
            watched,
            camera_size=_size(opts["size"], "sim size") if "size" in opts else (size or (1280, 720)),
            fps=kw.get("fps", fps or 30.0), latency_ms=kw.get("latency_ms", 80.0),
            exposure_drift=kw.get("drift", 0.03), drift_period_s=kw.get("drift_period_s", 20.0),
            noise_std=kw.get("noise", 0.01), seed=kw.get("seed", 0),
            mirror=bool(kw.get("mirror", 1)))
    if spec.startswith("file:"):
        from acquire.sources.file import FileSource

        path = Path(spec[5:])
        if not path.exists():
            raise SpecError(f"camera file {path} does not exist")
        return FileSource(path, fps=fps)
    from acquire.sources.camera import CameraSource

    if spec.isdigit():
        return CameraSource(int(spec), size=size, fps=fps)
    if "://" in spec or spec.startswith("/dev/") or Path(spec).exists():
        return CameraSource(spec, size=size, fps=fps)
    raise SpecError(f"unknown camera {spec!r}: use an index (0), /dev/videoN, a URL, file:PATH or "
                    "sim")

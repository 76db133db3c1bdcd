"""Validated settings of a recording, the metadata stored with it, and one manifest line.

All models forbid unknown fields; a bad file becomes one line per error (see ``format_errors``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from calibration.model import CalibrationResult


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecordConfig(_Strict):
    """How to record: which devices, how fast, for how long, where, and how to store frames."""

    version: Literal[1] = 1
    mode: Literal["passive", "active"] = "passive"
    camera: str = Field(default="0", description="Camera spec: index, /dev/videoN, URL, file:PATH, "
                        "sim or sim:key=value,...")
    screen: str = Field(default="1", description="Screen spec: monitor number, "
                        "region:x,y,w,h or virtual[:WxH].")
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
    stimulus_size: tuple[int, int] = Field(default=(640, 360), description="Generated (w, h).")
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


class RecordingMetadata(_Strict):
    """Written once, before the first pair: what was recorded, with what, when, by which software."""

    version: Literal[1] = 1
    software: str
    started_wall: float
    started_iso: str
    started_monotonic_s: float
    host: str
    mode: Literal["passive", "active"]
    camera: dict[str, Any]
    screen: dict[str, Any]
    rate_hz: float
    frame_format: Literal["tiff", "png"]
    latency_ms_used: float
    calibration: CalibrationResult | None
    config: RecordConfig


class ManifestEntry(_Strict):
    """One complete pair; written only after all its files are durable on disk."""

    index: int
    camera: str
    screen: str
    stimulus: str | None = None
    t_camera_s: float
    t_screen_s: float
    t_shown_s: float | None = None
    t_wall: float
    skew_ms: float = Field(description="Passive: (t_camera - latency) - t_screen. Active: t_camera "
                           "- t_shown - latency - settle.")
    camera_frame: int
    screen_frame: int
    flags: list[str] = Field(default_factory=list)
    stimulus_id: dict[str, Any] | None = None
    camera_meta: dict[str, Any] = Field(default_factory=dict)


def format_errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors())


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML, TOML or JSON file into a dict (safe YAML loader); raises ValueError."""
    if not path.exists():
        raise ValueError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except Exception as exc:
        raise ValueError(f"cannot parse {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of settings")
    return data

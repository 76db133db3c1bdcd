"""What a calibration measured, as one JSON file the recorder, the loader and the viewer read.

Times are milliseconds on the shared monotonic clock; the ROI is ``(x, y, width, height)`` in camera
pixels; exposure drift is a fraction of the mean level (0.05 = 5 %).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mcnn.utils.atomic import atomic_write_text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LatencyCalibration(_Strict):
    """Display-to-camera latency: screen change handed to the display -> camera sees half of it."""

    median_ms: float
    p95_ms: float
    mean_ms: float
    std_ms: float
    count: int = Field(ge=1)
    samples_ms: list[float]
    camera_period_ms: float | None = Field(default=None, description="Measured camera frame period.")


class RoiCalibration(_Strict):
    roi: tuple[int, int, int, int] = Field(description="(x, y, width, height) in camera pixels.")
    method: Literal["correlation", "given"]
    camera_size: tuple[int, int] | None = None
    score: float | None = Field(default=None, description="Mean correlation inside the ROI.")


class ExposureCalibration(_Strict):
    duration_s: float
    frames: int
    mean_level: float = Field(description="Mean camera level in the ROI, 0..255 units.")
    drift_fraction: float = Field(description="(max - min) / mean of the smoothed level.")
    colour_drift_fraction: float = Field(description="Largest change of R/G or B/G, relative.")
    threshold: float
    drifting: bool
    dark_level: float | None = None
    dark_frame: str | None = Field(default=None, description="File next to this JSON (.npy).")


class CalibrationResult(_Strict):
    version: Literal[1] = 1
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    camera: dict[str, Any] = Field(default_factory=dict)
    screen: dict[str, Any] = Field(default_factory=dict)
    latency: LatencyCalibration | None = None
    roi: RoiCalibration | None = None
    exposure: ExposureCalibration | None = None

    def save(self, path: str | Path) -> Path:
        """Write atomically (tmp + fsync + rename): a crash leaves the old file or the new one."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.model_dump(mode="json"), indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> CalibrationResult:
        """Read a calibration file; a missing or invalid one raises ValueError with the reason."""
        path = Path(path)
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"calibration file {path} does not exist") from None
        except ValidationError as exc:
            lines = [f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()]
            raise ValueError(f"invalid calibration file {path}: " + "; ".join(lines)) from None

    def merged(self, other: CalibrationResult) -> CalibrationResult:
        """This result with every part ``other`` measured replacing ours."""
        data = self.model_dump()
        for key in ("latency", "roi", "exposure", "camera", "screen"):
            value = getattr(other, key)
            if value:
                data[key] = getattr(other, key).model_dump() if hasattr(value, "model_dump") \
                    else value
        data["created"] = other.created
        return CalibrationResult.model_validate(data)

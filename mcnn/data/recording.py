"""The recording format ``acquire-pairs`` writes and training reads: one home for both sides.

Layout of one recording folder::

    metadata.json        RecordingMetadata, written once before the first pair
    calibration.json     CalibrationResult used while recording (if any)
    manifest.jsonl       one ManifestEntry per line, appended after the pair's files are durable
    camera/000000.tiff   camera frame (H, W, C) uint8/uint16 RGB (TIFF uncompressed, or PNG)
    screen/000000.tiff   screen image the camera frame is paired with
    stimulus/000000.tiff active mode: the exact image that was shown
    summary.json         counts and why recording stopped (absent after a crash)

The writer (``acquire.storage``) and the reader here (``load_pair_datasets``) both import this
module and not each other. It sits in the lowest layer (``mcnn``), so it imports nothing from
``acquire``, ``calibration`` or ``apps``, and no image library until a frame is read.

Calibration conventions: times in milliseconds on the recorder's monotonic clock; an ROI is
``(x, y, width, height)`` in camera pixels; image sizes are ``(height, width)``; exposure drift is
a fraction of the mean level (0.05 = 5 %).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

if TYPE_CHECKING:
    from mcnn.data.config import PairsDataConfig

logger = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
METADATA = "metadata.json"
SUMMARY = "summary.json"
CALIBRATION = "calibration.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- calibration ------------------------------------------------------------------------------
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
    """Where the camera sees the lit surface: a box in camera pixels."""

    roi: tuple[int, int, int, int] = Field(description="(x, y, width, height) in camera pixels.")
    method: Literal["correlation", "given"]
    camera_size_hw: tuple[int, int] | None = Field(
        default=None, description="(height, width) of the camera frames the ROI was found in.")
    score: float | None = Field(default=None, description="Mean correlation inside the ROI.")

    @model_validator(mode="before")
    @classmethod
    def _old_camera_size(cls, data: Any) -> Any:
        """Files written before (H, W) everywhere stored ``camera_size`` as (width, height)."""
        if isinstance(data, dict) and "camera_size" in data and "camera_size_hw" not in data:
            data = dict(data)
            old = data.pop("camera_size")
            data["camera_size_hw"] = None if old is None else (old[1], old[0])
        return data


class ExposureCalibration(_Strict):
    """Whether auto exposure / white balance drift while the screen is fixed, and a dark level."""

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
    """Everything a calibration measured, as one JSON file the recorder and the loader read."""

    version: Literal[1] = 1
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    camera: dict[str, Any] = Field(default_factory=dict)
    screen: dict[str, Any] = Field(default_factory=dict)
    latency: LatencyCalibration | None = None
    roi: RoiCalibration | None = None
    exposure: ExposureCalibration | None = None

    def save(self, path: str | Path) -> Path:
        """Write atomically (tmp + fsync + rename): a crash leaves the old file or the new one."""
        from mcnn.utils.atomic import atomic_write_text

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.model_dump(mode="json"), indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> CalibrationResult:
        """Read a calibration file; a missing or invalid one raises ValueError, one line per error."""
        from mcnn.config_io import format_validation_error

        path = Path(path)
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"{path}: no such calibration file") from None
        except ValidationError as exc:
            raise ValueError(format_validation_error(exc, str(path))) from None

    def merged(self, other: CalibrationResult) -> CalibrationResult:
        """This result with every part ``other`` measured replacing ours."""
        data = self.model_dump()
        for key in ("latency", "roi", "exposure", "camera", "screen"):
            value = getattr(other, key)
            if value:
                data[key] = value.model_dump() if hasattr(value, "model_dump") else value
        data["created"] = other.created
        return CalibrationResult.model_validate(data)


# -- metadata and manifest ---------------------------------------------------------------------
class RecordingMetadata(_Strict):
    """Written once, before the first pair: what was recorded, with what, when, by which software.

    ``config`` is the recorder's settings as plain JSON (``RecordConfig.model_dump(mode="json")``),
    so reading a recording does not need the recorder's code.
    """

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
    config: dict[str, Any]


class ManifestEntry(_Strict):
    """One complete pair; written only after all its files are durable on disk.

    Frame paths are relative to the recording folder, with ``/`` separators.
    """

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

    @property
    def target(self) -> str:
        """The training target: the exact stimulus in active mode, else the screenshot."""
        return self.stimulus or self.screen


def _inside(rel: str) -> bool:
    """Whether ``rel`` is a relative path that stays inside the folder it is relative to."""
    if not rel or PureWindowsPath(rel).drive or PurePosixPath(rel).is_absolute() or \
            PureWindowsPath(rel).is_absolute():
        return False
    return ".." not in PurePosixPath(rel.replace("\\", "/")).parts


def read_manifest(folder: str | Path) -> list[ManifestEntry]:
    """Every complete pair listed in ``folder``'s manifest, once per pair index, in file order.

    A torn last line (recorder killed) or an invalid line is skipped with a log message; a repeated
    pair index keeps its first line. A frame path that is absolute or leaves the folder raises
    ValueError naming the manifest: such a file was not written by the recorder.
    """
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{folder} has no {MANIFEST}: not a recording folder")
    entries: list[ManifestEntry] = []
    seen: set[int] = set()
    repeated = 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.endswith(b"\n"):
                logger.info("%s: ignoring torn last line %d (recorder was killed)", path, number)
                continue
            if not raw.strip():
                continue
            try:
                entry = ManifestEntry.model_validate_json(raw)
            except ValueError:
                logger.warning("%s: skipping unreadable line %d", path, number)
                continue
            for rel in (entry.camera, entry.screen, entry.stimulus):
                if rel is not None and not _inside(rel):
                    raise ValueError(f"{path}: line {number}: frame path {rel!r} is absolute or "
                                     "leaves the recording folder")
            if entry.index in seen:
                repeated += 1
                continue
            seen.add(entry.index)
            entries.append(entry)
    if repeated:
        logger.warning("%s: %d lines repeat a pair index already listed; kept the first of each",
                       path, repeated)
    return entries


def read_metadata(folder: str | Path) -> RecordingMetadata:
    """The recording's metadata; raises FileNotFoundError (not a recording) or ValueError."""
    from mcnn.config_io import format_validation_error

    path = Path(folder) / METADATA
    if not path.exists():
        raise FileNotFoundError(f"{folder} has no {METADATA}: not a recording folder")
    try:
        return RecordingMetadata.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise ValueError(format_validation_error(exc, str(path))) from None


# -- the training reader ----------------------------------------------------------------------
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


class RecordedPairs(torch.utils.data.Dataset):
    """Pairs ``entries`` of recording ``folder`` with fixed preprocessing (a ``PairDataset``).

    ``roi`` is ``(x, y, width, height)``; ``camera_size`` and ``screen_size`` are ``(height,
    width)`` to resize to (None keeps the size). Items are ``(camera (C, H, W), target (C, H', W'))``
    float32 in [0, 1].
    """

    def __init__(self, folder: Path, entries: list[ManifestEntry], *,
                 roi: tuple[int, int, int, int] | None, mirror: bool,
                 camera_size: tuple[int, int] | None, screen_size: tuple[int, int] | None,
                 grayscale: bool) -> None:
        self.folder, self.entries, self.roi = Path(folder), entries, roi
        self.mirror, self.camera_size, self.screen_size = mirror, camera_size, screen_size
        self.grayscale = grayscale
        self.in_channels = self.out_channels = 1 if grayscale else 3

    def __len__(self) -> int:
        return len(self.entries)

    def _read(self, rel: str) -> np.ndarray:
        """``(C, H, W)`` float32 in [0, 1]; an unreadable file raises ValueError naming it."""
        from mcnn.data.image_io import read_images

        path = self.folder / rel
        try:
            return read_images(path, channels_last=True)[0]
        except ValueError:
            raise
        except Exception as exc:  # a decoder's own error type: say which file
            raise ValueError(f"{path}: cannot read frame ({exc})") from exc

    def _prepare(self, x: np.ndarray, size_hw: tuple[int, int] | None) -> torch.Tensor:
        if size_hw is not None and tuple(x.shape[1:]) != tuple(size_hw):
            import cv2

            h, w = size_hw
            shrink = w < x.shape[2]
            hwc = cv2.resize(np.ascontiguousarray(x.transpose(1, 2, 0)), (w, h),  # cv2 wants (w, h)
                             interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
            x = (hwc[..., None] if hwc.ndim == 2 else hwc).transpose(2, 0, 1)
        if self.grayscale and x.shape[0] >= 3:
            x = np.tensordot(_LUMA, x[:3], axes=1)[None]
        elif not self.grayscale and x.shape[0] == 1:
            x = np.repeat(x, 3, axis=0)
        elif x.shape[0] == 4:
            x = x[:3]
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        entry = self.entries[index]
        camera = self._read(entry.camera)
        if self.roi is not None:
            x, y, w, h = self.roi
            camera = camera[:, y:y + h, x:x + w]
        if self.mirror:
            camera = camera[:, :, ::-1]
        target = self._read(entry.target)
        return self._prepare(camera, self.camera_size), self._prepare(target, self.screen_size)


def load_pair_datasets(cfg: PairsDataConfig) -> tuple[RecordedPairs, RecordedPairs]:
    """``(train, test)`` datasets of a recording; raises ValueError with the reason on bad input.

    Applies the paper's preprocessing: crop a camera region (given, or the ROI from the recording's
    calibration), mirror the camera frame, resize both sides to ``(height, width)``, optionally use
    one luminance channel, and split by time: the first ``test_first`` pairs are held out.
    """
    folder = Path(cfg.path)
    try:
        entries = read_manifest(folder)
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None
    if cfg.skip_flagged:
        entries = [e for e in entries if not e.flags]
    entries.sort(key=lambda e: (e.t_camera_s, e.index))
    for e in entries:
        for rel in (e.camera, e.target):
            if not (folder / rel).is_file():
                raise ValueError(f"{folder / MANIFEST}: pair {e.index} lists {rel}, which is "
                                 "missing")
    roi = cfg.camera_roi
    if roi is None and (folder / CALIBRATION).exists():
        calibration = CalibrationResult.load(folder / CALIBRATION)
        if calibration.roi is not None:
            roi = calibration.roi.roi
    if len(entries) <= cfg.test_first:
        raise ValueError(f"{folder} has {len(entries)} usable pairs; test_first={cfg.test_first} "
                         "leaves none for training (record longer or lower test_first)")
    common: dict[str, Any] = dict(roi=roi, mirror=cfg.mirror, camera_size=cfg.camera_size,
                                  screen_size=cfg.screen_size, grayscale=cfg.grayscale)
    test = RecordedPairs(folder, entries[:cfg.test_first], **common)
    train = RecordedPairs(folder, entries[cfg.test_first:], **common)
    logger.info("%s: %d train / %d test pairs (roi=%s)", folder, len(train), len(test), roi)
    return train, test

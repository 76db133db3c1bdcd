"""The recording folder: crash-safe frame files, an append-only manifest, metadata.

Layout of one recording::

    metadata.json        RecordingMetadata, written once before the first pair
    calibration.json     copy of the calibration used (if any)
    manifest.jsonl       one ManifestEntry per line, appended after the pair's files are durable
    camera/000000.tiff   camera frame (H, W, 3) uint8 RGB (TIFF uncompressed, or PNG)
    screen/000000.tiff   screen image the camera frame is paired with
    stimulus/000000.tiff active mode: the exact image that was shown
    summary.json         counts and why recording stopped (absent after a crash)

Every file is written as ``name.tmp``, flushed, fsynced and renamed, and the folder is fsynced
before the manifest line that lists it is appended and fsynced. So after a SIGKILL or power loss
every pair in the manifest is complete; the worst case is a torn last manifest line (ignored by
the reader) and orphan frame files of pairs in flight.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np

from acquire.config import ManifestEntry, RecordingMetadata
from mcnn.utils.atomic import DiskFullError, fsync_dir, is_disk_full
from mcnn.utils.atomic import atomic_write_bytes as _atomic_write_bytes

logger = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
METADATA = "metadata.json"
SUMMARY = "summary.json"
CALIBRATION = "calibration.json"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """A durable frame file; the folder is fsynced once per pair by ``write_pair``."""
    _atomic_write_bytes(path, data, sync_dir=False)


def encode_frame(image: np.ndarray, fmt: str) -> bytes:
    """Lossless bytes of an ``(H, W, C)`` uint8/uint16 RGB image as TIFF (uncompressed) or PNG."""
    if fmt == "tiff":
        import tifffile

        buf = io.BytesIO()
        photometric = "rgb" if image.ndim == 3 and image.shape[2] == 3 else "minisblack"
        tifffile.imwrite(buf, image, photometric=photometric)
        return buf.getvalue()
    import cv2

    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.shape[-1] == 3 else image
    ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError("PNG encoding failed")
    return data.tobytes()


class RecordingWriter:
    """Creates a recording folder and writes pairs into it from any number of threads."""

    def __init__(self, folder: Path, metadata: RecordingMetadata,
                 calibration_file: Path | None = None) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and any(self.folder.iterdir()):
            raise FileExistsError(f"{self.folder} exists and is not empty")
        self.format = metadata.frame_format
        self.suffix = ".tiff" if self.format == "tiff" else ".png"
        for sub in ("camera", "screen") + (("stimulus",) if metadata.mode == "active" else ()):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        meta = json.dumps(metadata.model_dump(mode="json"), indent=2).encode()
        atomic_write_bytes(self.folder / METADATA, meta)
        if calibration_file is not None:
            shutil.copyfile(calibration_file, self.folder / CALIBRATION)
        self._manifest = open(self.folder / MANIFEST, "ab")  # noqa: SIM115 - lives with the writer
        fsync_dir(self.folder)
        self._lock = threading.Lock()
        self.written = 0

    def write_pair(self, index: int, camera: np.ndarray, screen: np.ndarray,
                   stimulus: np.ndarray | None, entry: dict[str, Any]) -> ManifestEntry:
        """Write the frames, then append the manifest line (both durable before returning)."""
        name = f"{index:06d}{self.suffix}"
        parts = [("camera", camera), ("screen", screen)]
        if stimulus is not None:
            parts.append(("stimulus", stimulus))
        for sub, image in parts:
            atomic_write_bytes(self.folder / sub / name, encode_frame(image, self.format))
            entry[sub] = f"{sub}/{name}"
        for sub, _ in parts:
            fsync_dir(self.folder / sub)
        record = ManifestEntry(index=index, **entry)
        line = (json.dumps(record.model_dump(mode="json"), separators=(",", ":")) + "\n").encode()
        with self._lock:
            try:
                self._manifest.write(line)
                self._manifest.flush()
                os.fsync(self._manifest.fileno())
            except OSError as exc:
                if is_disk_full(exc):
                    raise DiskFullError(exc.errno, "disk full while appending the manifest") \
                        from exc
                raise
            self.written += 1
        return record

    def write_summary(self, summary: dict[str, Any]) -> None:
        try:
            atomic_write_bytes(self.folder / SUMMARY, json.dumps(summary, indent=2).encode())
        except OSError:
            logger.warning("could not write %s (disk full?)", SUMMARY, exc_info=True)

    def close(self) -> None:
        with self._lock:
            if not self._manifest.closed:
                self._manifest.close()


def read_manifest(folder: Path) -> list[ManifestEntry]:
    """Every complete pair listed in ``folder``'s manifest; a torn or invalid line is skipped."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{folder} has no {MANIFEST}: not a recording folder")
    entries: list[ManifestEntry] = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.endswith(b"\n"):
                logger.info("%s: ignoring torn last line %d (recorder was killed)", path, number)
                continue
            try:
                entries.append(ManifestEntry.model_validate_json(raw))
            except ValueError:
                logger.warning("%s: skipping unreadable line %d", path, number)
    return entries


def read_metadata(folder: Path) -> RecordingMetadata:
    path = Path(folder) / METADATA
    if not path.exists():
        raise FileNotFoundError(f"{folder} has no {METADATA}: not a recording folder")
    return RecordingMetadata.model_validate_json(path.read_text(encoding="utf-8"))

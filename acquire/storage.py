"""Writing a recording folder: crash-safe frame files, an append-only manifest, metadata.

The format (layout, ``ManifestEntry``, ``RecordingMetadata``, the reader) is defined once in
:mod:`mcnn.data.recording`; this module is its writer.

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

from mcnn.data.recording import (
    CALIBRATION,
    MANIFEST,
    METADATA,
    SUMMARY,
    ManifestEntry,
    RecordingMetadata,
)
from mcnn.utils.atomic import DiskFullError, fsync_dir, is_disk_full
from mcnn.utils.atomic import atomic_write_bytes as _atomic_write_bytes

logger = logging.getLogger(__name__)

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

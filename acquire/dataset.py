"""Recorded pairs as a training dataset (``mcnn.data.protocol.PairDataset``).

``load_pair_datasets(cfg)`` applies the paper's preprocessing: crop a camera region (given, or the
ROI from the recording's calibration), mirror the camera frame, resize both sides, optionally
convert to one luminance channel, and split by time: the first ``test_first`` pairs are held out.
Items are ``(camera (C, H, W), screen (C, H', W'))`` float32 in [0, 1]. In active recordings the
target is the exact stimulus image that was shown; in passive ones, the paired screenshot.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from mcnn.data.config import PairsDataConfig

logger = logging.getLogger(__name__)


class RecordedPairs(torch.utils.data.Dataset):
    """Pairs ``entries`` of recording ``folder`` with fixed preprocessing."""

    def __init__(self, folder: Path, entries: list, *, roi: tuple[int, int, int, int] | None,
                 mirror: bool, camera_size: tuple[int, int] | None,
                 screen_size: tuple[int, int] | None, grayscale: bool) -> None:
        self.folder, self.entries, self.roi = Path(folder), entries, roi
        self.mirror, self.camera_size, self.screen_size = mirror, camera_size, screen_size
        self.grayscale = grayscale
        self.in_channels = self.out_channels = 1 if grayscale else 3

    def __len__(self) -> int:
        return len(self.entries)

    def _prepare(self, image: np.ndarray, size: tuple[int, int] | None) -> torch.Tensor:
        import cv2

        scale = 65535.0 if image.dtype == np.uint16 else 255.0
        x = image.astype(np.float32) / scale
        if size is not None and (x.shape[1], x.shape[0]) != tuple(size):
            area = size[0] < x.shape[1]
            x = cv2.resize(x, tuple(size), interpolation=cv2.INTER_AREA if area
                           else cv2.INTER_LINEAR)
        if x.ndim == 2:
            x = x[..., None]
        if self.grayscale and x.shape[2] == 3:
            x = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        elif not self.grayscale and x.shape[2] == 1:
            x = np.repeat(x, 3, axis=2)
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        from acquire.sources.file import read_image

        entry = self.entries[index]
        camera = read_image(self.folder / entry.camera)
        if self.roi is not None:
            x, y, w, h = self.roi
            camera = camera[y:y + h, x:x + w]
        if self.mirror:
            camera = camera[:, ::-1]
        target = read_image(self.folder / (entry.stimulus or entry.screen))
        return self._prepare(camera, self.camera_size), self._prepare(target, self.screen_size)


def load_pair_datasets(cfg: PairsDataConfig) -> tuple[RecordedPairs, RecordedPairs]:
    """``(train, test)`` datasets of a recording; raises ValueError with the reason on bad input."""
    from acquire.storage import CALIBRATION, read_manifest
    from calibration.model import CalibrationResult

    folder = Path(cfg.path)
    try:
        entries = read_manifest(folder)
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None
    if cfg.skip_flagged:
        entries = [e for e in entries if not e.flags]
    entries.sort(key=lambda e: (e.t_camera_s, e.index))
    for e in entries:
        for rel in (e.camera, e.stimulus or e.screen):
            if not (folder / rel).exists():
                raise ValueError(f"{folder}: manifest lists {rel}, which is missing")
    roi = cfg.camera_roi
    if roi is None and (folder / CALIBRATION).exists():
        calibration = CalibrationResult.load(folder / CALIBRATION)
        if calibration.roi is not None:
            roi = calibration.roi.roi
    if len(entries) <= cfg.test_first:
        raise ValueError(f"{folder} has {len(entries)} usable pairs; test_first={cfg.test_first} "
                         "leaves none for training (record longer or lower test_first)")
    common = dict(roi=roi, mirror=cfg.mirror, camera_size=cfg.camera_size,
                  screen_size=cfg.screen_size, grayscale=cfg.grayscale)
    test = RecordedPairs(folder, entries[:cfg.test_first], **common)
    train = RecordedPairs(folder, entries[cfg.test_first:], **common)
    logger.info("%s: %d train / %d test pairs (roi=%s)", folder, len(train), len(test), roi)
    return train, test

"""How close a retrieved phase is to the truth: the piston (mean) is invisible to intensities, so
both maps are compared with their means removed."""

from __future__ import annotations

import numpy as np


def phase_rmse(estimate: np.ndarray, truth: np.ndarray) -> float:
    """RMSE in rad of ``(H, W)`` maps after removing each one's mean (piston)."""
    e = np.asarray(estimate, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if e.shape != t.shape:
        raise ValueError(f"shapes differ: estimate {e.shape}, truth {t.shape}")
    return float(np.sqrt(np.mean(((e - e.mean()) - (t - t.mean())) ** 2)))


def phase_ssim(estimate: np.ndarray, truth: np.ndarray) -> float:
    """SSIM of the piston-removed maps over the truth's range (scikit-image, Gaussian window)."""
    from skimage.metrics import structural_similarity

    e = np.asarray(estimate, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    e, t = e - e.mean(), t - t.mean()
    data_range = float(t.max() - t.min()) or 1.0
    return float(structural_similarity(t, e, data_range=data_range, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False))

"""Gerchberg-Saxton multi-plane iterative phase retrieval (Gerchberg & Saxton 1972; Allen & Oxley
2001's multi-plane form).

The complex field is propagated from plane to plane (angular spectrum, ``mcnn.physics.defocus``);
at each measured plane its modulus is replaced by the measured ``sqrt(I)`` and its phase kept.
Sweeps go up then down through the planes. The frames are padded (reflect, by the diffraction
spread of the largest distance) and only the measured region is constrained, so the periodic FFT
does not wrap light into the frame. Started from the TIE phase (``init="tie"``) the iterations
refine the solution the TIE linearised; the result is that start plus a wrapped correction, so a
phase range above 2 pi needs no unwrapping as long as the correction stays within +-pi.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from mcnn.phase.tie import _check, _focus_plane, multiplane_tie
from mcnn.physics.defocus import diffraction_pad_px, pad_field, propagate


def gerchberg_saxton(
    intensities: np.ndarray,
    defocus_um: Sequence[float],
    wavelength_um: float,
    pixel_size_um: float,
    *,
    medium_index: float = 1.0,
    iterations: int = 30,
    init: Literal["tie", "zero"] = "tie",
    regularization: float = 0.1,
) -> np.ndarray:
    """Phase ``(H, W)`` rad (mean 0) at ``z = 0`` from intensities at ``defocus_um``."""
    stack, z = _check(intensities, defocus_um)
    if iterations < 0:
        raise ValueError(f"iterations={iterations} must be >= 0")
    h, w = stack.shape[1:]
    scale = float(stack.mean())
    if scale <= 0:
        raise ValueError("the intensities have no signal (mean <= 0)")
    stack = np.maximum(stack / scale, 0.0)
    if init == "tie" and len(np.unique(z)) >= 2:
        start = multiplane_tie(stack, z.tolist(), wavelength_um, pixel_size_um, medium_index=medium_index,
                               regularization=regularization).astype(np.float64)
    else:
        start = np.zeros((h, w))
    pad = diffraction_pad_px(float(np.abs(z).max()), wavelength_um, pixel_size_um,
                             medium_index=medium_index)
    pad_y, pad_x = min(max(pad, 8), 4 * h), min(max(pad, 8), 4 * w)
    region = (slice(pad_y, pad_y + h), slice(pad_x, pad_x + w))
    amplitude = torch.from_numpy(np.sqrt(stack)).float()  # (N, H, W)
    focus = torch.from_numpy(np.sqrt(np.maximum(_focus_plane(stack, z), 0))).float()
    phase0 = torch.from_numpy(start).float()
    field = pad_field(torch.polar(focus, phase0)[None, None], (pad_y, pad_x), "reflect")

    order = list(np.argsort(z))
    sweep = order + order[::-1][1:] if len(order) > 1 else order
    z_now = 0.0

    def go(field: torch.Tensor, z_from: float, z_to: float) -> torch.Tensor:
        if z_to == z_from:
            return field
        dz = torch.tensor([[z_to - z_from]])
        return propagate(field, dz, wavelength_um, pixel_size_um, medium_index=medium_index)

    for _ in range(iterations):
        for k in sweep:
            field = go(field, z_now, float(z[k]))
            z_now = float(z[k])
            inside = field[..., region[0], region[1]]
            field[..., region[0], region[1]] = amplitude[k] * torch.exp(1j * inside.angle())
    field = go(field, z_now, 0.0)[0, 0, region[0], region[1]]
    correction = torch.angle(field * torch.exp(-1j * phase0)).numpy()
    phi = start + correction
    return (phi - phi.mean()).astype(np.float32)

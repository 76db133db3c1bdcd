"""Transport-of-intensity (TIE) phase retrieval by FFT Poisson solves (Teague 1983; Paganin & Nugent).

The TIE, ``div(I grad phi) = -k dI/dz`` with ``k = 2 pi n / lambda``, links the axial intensity
derivative to the phase. ``fft_tie`` takes the derivative from a symmetric pair,
``(I(z) - I(-z)) / (2 z)``; ``multiplane_tie`` fits it by least squares over all planes. Both solve the Poisson equations spectrally on a mirror-extended grid (even symmetry:
Neumann boundaries, no wrap-around jump), with Tikhonov regularisation of the inverse Laplacian,
``-q^2 / (q^4 + alpha)``, which tames the low frequencies that the TIE measures worst (noise there
becomes the familiar cloudy background).

Arrays: intensities ``(N, H, W)`` float, any positive scale; phase ``(H, W)`` float32 rad, mean 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _mirror(x: np.ndarray) -> np.ndarray:
    """``(H, W)`` -> ``(2H - 2, 2W - 2)`` whole-sample even extension (reflection about the edge
    pixels, the DCT-I boundary): the field outside continues as its mirror image, which is also
    how the simulator pads (``pad_mode="reflect"``)."""
    if x.shape[0] > 2:
        x = np.concatenate([x, x[-2:0:-1]], axis=0)
    if x.shape[1] > 2:
        x = np.concatenate([x, x[:, -2:0:-1]], axis=1)
    return x


def _wavenumbers(shape: tuple[int, int], pixel_size_um: float) -> tuple[np.ndarray, np.ndarray]:
    qy = 2 * math.pi * np.fft.fftfreq(shape[0], d=pixel_size_um).reshape(-1, 1)
    qx = 2 * math.pi * np.fft.fftfreq(shape[1], d=pixel_size_um).reshape(1, -1)
    return qy, qx


def _inverse_laplacian(g: np.ndarray, pixel_size_um: float, regularization: float) -> np.ndarray:
    """``phi`` with ``laplacian(phi) = g`` (periodic ``g``), Tikhonov-damped at low frequencies.

    ``alpha = regularization * q_min^4`` with ``q_min = 2 pi / width``: scale-free, so the same
    value means the same damping for any pixel size and frame size.
    """
    qy, qx = _wavenumbers(g.shape, pixel_size_um)
    q2 = qy**2 + qx**2
    q_min = 2 * math.pi / (max(g.shape) * pixel_size_um)
    alpha = regularization * q_min**4
    inverse = -q2 / (q2**2 + alpha) if alpha > 0 else -np.divide(1.0, q2, where=q2 > 0,
                                                                 out=np.zeros_like(q2))
    inverse[0, 0] = 0.0
    return np.fft.ifft2(np.fft.fft2(g) * inverse).real


def solve_tie(
    didz: np.ndarray,
    focus_intensity: np.ndarray,
    wavelength_um: float,
    pixel_size_um: float,
    *,
    medium_index: float = 1.0,
    regularization: float = 0.1,
    uniform: bool = False,
) -> np.ndarray:
    """Phase ``(H, W)`` rad from ``dI/dz`` (per um) and the in-focus intensity (same scale).

    ``uniform=True``: the uniform-intensity form ``laplacian(phi) = -k dI/dz / mean(I)``; else the
    general form, two Poisson solves through Teague's auxiliary function ``psi``
    (``grad psi = I grad phi``).
    """
    k = 2 * math.pi * medium_index / wavelength_um
    h, w = didz.shape
    i0 = np.asarray(focus_intensity, dtype=np.float64)
    mean_i = float(i0.mean())
    if mean_i <= 0:
        raise ValueError("the in-focus intensity has no signal (mean <= 0)")
    rhs = _mirror(-k * np.asarray(didz, dtype=np.float64))
    if uniform:
        phi = _inverse_laplacian(rhs / mean_i, pixel_size_um, regularization)
    else:
        psi = _inverse_laplacian(rhs, pixel_size_um, regularization)
        qy, qx = _wavenumbers(psi.shape, pixel_size_um)
        spectrum = np.fft.fft2(psi)
        i_ext = np.maximum(_mirror(i0), 0.05 * mean_i)  # dark pixels: bounded division
        gy = np.fft.ifft2(1j * qy * spectrum).real / i_ext
        gx = np.fft.ifft2(1j * qx * spectrum).real / i_ext
        div = np.fft.ifft2(1j * qy * np.fft.fft2(gy) + 1j * qx * np.fft.fft2(gx)).real
        phi = _inverse_laplacian(div, pixel_size_um, regularization)
    phi = phi[:h, :w]
    return (phi - phi.mean()).astype(np.float32)


def _check(intensities: np.ndarray, defocus_um: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    stack = np.asarray(intensities, dtype=np.float64)
    z = np.asarray(defocus_um, dtype=np.float64).reshape(-1)
    if stack.ndim != 3:
        raise ValueError(f"intensities must be (N, H, W), got shape {stack.shape}")
    if len(z) != len(stack):
        raise ValueError(f"{len(stack)} planes but {len(z)} defocus distances")
    return stack, z


def _focus_plane(stack: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The measured in-focus plane when there is one (|z| < 1e-6 um), else the mean of all planes
    (first-order estimate: the TIE's even terms cancel for symmetric planes)."""
    at_focus = np.flatnonzero(np.abs(z) < 1e-6)
    return stack[at_focus[0]] if len(at_focus) else stack.mean(axis=0)


def symmetric_pair(defocus_um: Sequence[float]) -> tuple[int, int]:
    """Indices ``(minus, plus)`` of the planes at ``-z`` and ``+z`` (2% tolerance) with the
    smallest ``|z|``: the TIE's finite difference is most accurate there."""
    z = [float(v) for v in defocus_um]
    best: tuple[int, int] | None = None
    for i, zi in enumerate(z):
        for j, zj in enumerate(z):
            if zi < 0 < zj and math.isclose(-zi, zj, rel_tol=0.02) and (
                best is None or zj < z[best[1]]
            ):
                best = (i, j)
    if best is None:
        raise ValueError(f"FFT-TIE needs a symmetric pair of planes at -z and +z; got {z}")
    return best


def fft_tie(
    intensities: np.ndarray,
    defocus_um: Sequence[float],
    wavelength_um: float,
    pixel_size_um: float,
    *,
    medium_index: float = 1.0,
    regularization: float = 0.1,
    uniform: bool = False,
) -> np.ndarray:
    """FFT-TIE from a symmetric pair ``+-z`` (the pair with the smallest ``|z|`` when there are more
    planes; the in-focus plane is used when measured). Phase ``(H, W)`` rad, mean 0."""
    stack, z = _check(intensities, defocus_um)
    minus, plus = symmetric_pair(z.tolist())
    didz = (stack[plus] - stack[minus]) / (z[plus] - z[minus])
    focus = _focus_plane(stack[[minus, plus]], z[[minus, plus]])
    if np.any(np.abs(z) < 1e-6):
        focus = _focus_plane(stack, z)
    return solve_tie(didz, focus, wavelength_um, pixel_size_um, medium_index=medium_index,
                     regularization=regularization, uniform=uniform)


def axial_derivative(
    stack: np.ndarray, z: np.ndarray, degree: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares polynomial fit ``I(z) = c0 + c1 z + ...`` per pixel -> ``(c0, c1)``:
    the in-focus intensity and ``dI/dz`` at ``z = 0`` from any number of planes."""
    degree = min(degree, len(np.unique(z)) - 1)
    if degree < 1:
        raise ValueError(f"an axial derivative needs planes at >= 2 distances; got {z.tolist()}")
    vander = np.vander(z, degree + 1, increasing=True)  # (N, degree + 1)
    coeffs, *_ = np.linalg.lstsq(vander, stack.reshape(len(z), -1), rcond=None)
    shape = stack.shape[1:]
    return coeffs[0].reshape(shape), coeffs[1].reshape(shape)


def multiplane_tie(
    intensities: np.ndarray,
    defocus_um: Sequence[float],
    wavelength_um: float,
    pixel_size_um: float,
    *,
    medium_index: float = 1.0,
    regularization: float = 0.1,
    degree: int = 1,
    uniform: bool = False,
) -> np.ndarray:
    """TIE with ``dI/dz`` fitted over all planes (``degree`` 1: straight line; 2 also absorbs the
    curvature that biases far planes). Phase ``(H, W)`` rad, mean 0."""
    stack, z = _check(intensities, defocus_um)
    fitted_focus, didz = axial_derivative(stack, z, degree)
    focus = _focus_plane(stack, z) if np.any(np.abs(z) < 1e-6) else fitted_focus
    return solve_tie(didz, focus, wavelength_um, pixel_size_um, medium_index=medium_index,
                     regularization=regularization, uniform=uniform)

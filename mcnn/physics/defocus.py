"""Phase retrieval from a defocus series: intensities of a wave at several distances from focus.

The object wave ``U0 = A * exp(i * phi)`` is propagated by the angular-spectrum method (exact
scalar diffraction for a band-limited field, evanescent waves dropped) to each defocus distance
``z``; the camera records ``|U_z|**2``, with optional Poisson (shot) and Gaussian read noise.
For a weak object the intensity change follows the transport-of-intensity equation,
``dI/dz = -(lambda / 2 pi) * div(I grad phi)``, which the tests check.

Units: lengths in micrometres, phase in radians, intensity relative to a unit-amplitude plane wave
(mean about 1). Fields are made periodic by the FFT, so the simulator pads the object by reflection
(``pad_fraction``) before propagating and crops the result.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mcnn.physics.base import ContentSource, Simulator
from mcnn.physics.config import DefocusConfig
from mcnn.physics.noise import read_noise, shot_noise


def angular_spectrum_kernel(
    size: tuple[int, int], z_um: torch.Tensor, wavelength_um: float, pixel_size_um: float
) -> torch.Tensor:
    """Transfer functions ``exp(i 2 pi z (sqrt(1/lambda^2 - f^2) - 1/lambda))``, shape ``z.shape + (H, W)``.

    The constant ``exp(i 2 pi z / lambda)`` is dropped (it does not change intensities) and the
    phase is computed in float64 in a cancellation-free form; evanescent frequencies are set to 0.
    """
    h, w = size
    fy = torch.fft.fftfreq(h, d=pixel_size_um, dtype=torch.float64).view(h, 1)
    fx = torch.fft.fftfreq(w, d=pixel_size_um, dtype=torch.float64).view(1, w)
    f2 = fy**2 + fx**2
    k2 = 1.0 / wavelength_um**2
    propagating = f2 < k2
    root = torch.sqrt((k2 - f2).clamp_min(0.0))
    delta = -f2 / (1.0 / wavelength_um + root)  # = sqrt(1/lambda^2 - f^2) - 1/lambda
    z = z_um.to(torch.float64).reshape(*z_um.shape, 1, 1)
    phase = 2 * math.pi * z * delta
    kernel = torch.polar(propagating.to(torch.float64).expand_as(phase), phase)
    return kernel.to(torch.complex64)


def propagate(
    field: torch.Tensor, z_um: torch.Tensor, wavelength_um: float, pixel_size_um: float
) -> torch.Tensor:
    """Propagate complex ``(B, 1, H, W)`` fields to distances ``z_um`` ``(B, N)`` -> ``(B, N, H, W)``.

    Periodic boundaries (FFT). Unitary for a band-limited field: energy is conserved and
    propagating by ``+z`` then ``-z`` returns the field.
    """
    kernel = angular_spectrum_kernel((field.shape[-2], field.shape[-1]), z_um, wavelength_um, pixel_size_um)
    return torch.fft.ifft2(torch.fft.fft2(field) * kernel)


class DefocusJitter:
    """Per-example defocus distances: nominal planes + a common focus error + per-plane jitter.

    Real series are never exactly where the stage says; training on jittered distances makes the
    network tolerant to it. ``sample`` returns ``{"defocus_um": (batch, N)}``.
    """

    def __init__(
        self, defocus_um: tuple[float, ...], focus_offset_um: float = 0.0, jitter_um: float = 0.0
    ) -> None:
        self.defocus_um = torch.tensor(defocus_um, dtype=torch.float32)
        self.focus_offset_um = focus_offset_um
        self.jitter_um = jitter_um

    def sample(self, batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        n = self.defocus_um.numel()
        offset = (2 * torch.rand(batch, 1, generator=generator) - 1) * self.focus_offset_um
        jitter = (2 * torch.rand(batch, n, generator=generator) - 1) * self.jitter_um
        return {"defocus_um": self.defocus_um.view(1, n) + offset + jitter}


class DefocusSeriesSimulator(Simulator):
    """Pairs ``(N defocused intensities, phase [+ amplitude])`` at scale 1."""

    scale = 1

    def __init__(self, config: DefocusConfig | None = None) -> None:
        super().__init__()
        self.config = config or DefocusConfig()
        c = self.config
        self.in_channels = len(c.defocus_um)
        self.out_channels = 2 if c.predict_amplitude else 1
        self.planes = DefocusJitter(tuple(c.defocus_um), c.focus_offset_um, c.defocus_jitter_um)

    def forward(
        self, phase: torch.Tensor, amplitude: torch.Tensor, defocus_um: torch.Tensor
    ) -> torch.Tensor:
        """Noiseless intensities ``(B, N, H, W)`` of ``amplitude * exp(i phase)`` (both
        ``(B, 1, H, W)``) at distances ``defocus_um`` ``(B, N)``, with reflect padding."""
        h, w = phase.shape[-2:]
        pad_y = min(h - 1, round(self.config.pad_fraction * h))
        pad_x = min(w - 1, round(self.config.pad_fraction * w))
        pads = (pad_x, pad_x, pad_y, pad_y)
        if pad_x or pad_y:
            phase = F.pad(phase, pads, mode="reflect")
            amplitude = F.pad(amplitude, pads, mode="reflect")
        field = torch.polar(amplitude.float(), phase.float())
        c = self.config
        out = propagate(field, defocus_um, c.wavelength_um, c.pixel_size_um)
        intensity = out.real**2 + out.imag**2
        return intensity[..., pad_y : pad_y + h, pad_x : pad_x + w]

    def add_noise(self, intensity: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Shot noise (counts / photons, so the mean is kept) and Gaussian read noise."""
        c = self.config
        if c.photons_per_px is not None:
            intensity = shot_noise(intensity, c.photons_per_px, generator)
        return read_noise(intensity, c.read_noise_std, generator)

    def sample(
        self,
        batch: int,
        size: tuple[int, int],
        generator: torch.Generator,
        content: ContentSource,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        phase = content.sample(batch, size, generator, channels=1) * c.phase_max_rad
        if c.amplitude_contrast > 0:
            amplitude = 1.0 - c.amplitude_contrast * content.sample(
                batch, size, generator, channels=1
            )
        else:
            amplitude = torch.ones_like(phase)
        defocus_um = self.planes.sample(batch, generator)["defocus_um"]
        inputs = self.add_noise(self(phase, amplitude, defocus_um), generator)
        target = phase - phase.mean(dim=(2, 3), keepdim=True) if c.zero_mean_phase else phase
        if c.predict_amplitude:
            target = torch.cat([target, amplitude], dim=1)
        return inputs.float(), target.float()

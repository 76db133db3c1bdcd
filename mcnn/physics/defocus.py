"""Phase retrieval from a defocus series: intensities of a wave at several distances from focus.

The object wave ``U0 = A * exp(i * phi)`` is propagated to each defocus distance ``z`` by the
angular-spectrum method (exact scalar diffraction for a band-limited field, evanescent waves
dropped; optionally band-limited for long distances) or by the paraxial Fresnel transfer function;
the camera records ``|U_z|**2`` through an optional NA pupil, blurred by partial coherence, with
optional Poisson (shot) and Gaussian read noise. For a weak object the intensity change follows the
transport-of-intensity equation, ``dI/dz = -(lambda / (2 pi n)) * div(I grad phi)``, which the
tests check.

Units: lengths in micrometres (wavelength in vacuum; in a medium of index n it is lambda / n),
phase in radians, intensity relative to a unit-amplitude plane wave (mean about 1).

Padding rule: the FFT makes fields periodic, so the object is padded before propagation and the
result cropped. Light of spatial frequency f leaves at angle sin(theta) = lambda f / n; the
highest frequency on the grid is 1 / (2 p) (or NA / lambda behind a pupil), so in a distance z it
moves laterally ``z * tan(theta)``; a disc source of NA_ill adds ``z * tan(theta_source)``. Each
side is padded by at least that spread for the largest |z| (``diffraction_pad_px``), so no light
that leaves one edge re-enters at the other inside the field of view.

Partial coherence damps the intensity spectrum (``coherence_envelope``): a uniform disc source of
numerical aperture NA_ill shifts the defocused image of each source point by ``z * tan(theta)``,
i.e. convolves it with a disc of radius ``R = |z| tan(theta_s)``, whose transfer function is
``2 J1(2 pi R f) / (2 pi R f)`` (exact in this shift model); a spectrum of Gaussian shape with FWHM
``bandwidth_um`` multiplies the weak-object transfer ``sin(pi lambda z f^2 / n)`` by
``exp(-(pi sigma_lambda z f^2 / n)^2 / 2)`` (exact for weak objects, an approximation otherwise).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from functools import lru_cache
from typing import Literal

import torch

from mcnn.physics.base import ContentSource, Simulator
from mcnn.physics.config import DefocusConfig
from mcnn.physics.noise import read_noise, shot_noise

Propagator = Literal["angular_spectrum", "fresnel"]
PadMode = Literal["reflect", "edge", "zero"]


def _frequencies(size: tuple[int, int], pixel_size_um: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(fy (H, 1), fx (1, W))`` in cycles per um, float64."""
    h, w = size
    fy = torch.fft.fftfreq(h, d=pixel_size_um, dtype=torch.float64).view(h, 1)
    fx = torch.fft.fftfreq(w, d=pixel_size_um, dtype=torch.float64).view(1, w)
    return fy, fx


def angular_spectrum_kernel(
    size: tuple[int, int],
    z_um: torch.Tensor,
    wavelength_um: float,
    pixel_size_um: float,
    *,
    medium_index: float = 1.0,
    band_limit: bool = False,
) -> torch.Tensor:
    """Transfer functions ``exp(i 2 pi z (sqrt(1/lambda^2 - f^2) - 1/lambda))``, shape ``z.shape + (H, W)``.

    ``lambda`` is the wavelength in the medium (``wavelength_um / medium_index``). The constant
    ``exp(i 2 pi z / lambda)`` is dropped (it does not change intensities) and the phase is
    computed in float64 in a cancellation-free form; evanescent frequencies are set to 0.
    ``band_limit`` also drops, per distance, the frequencies whose kernel phase is undersampled on
    this grid (Matsushima & Shimobaba 2009), which would otherwise alias at long distances.
    """
    fy, fx = _frequencies(size, pixel_size_um)
    f2 = fy**2 + fx**2
    k = medium_index / wavelength_um  # 1 / wavelength in the medium
    propagating = f2 < k**2
    root = torch.sqrt((k**2 - f2).clamp_min(0.0))
    delta = -f2 / (k + root)  # = sqrt(1/lambda^2 - f^2) - 1/lambda
    z = z_um.to(torch.float64).reshape(*z_um.shape, 1, 1)
    phase = 2 * math.pi * z * delta
    keep = propagating.to(torch.float64).expand_as(phase)
    if band_limit:
        keep = keep * _band_limit(size, z, wavelength_um / medium_index, pixel_size_um, fy, fx)
    return _phasor(keep, phase)


def _phasor(magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """``magnitude * exp(i phase)`` from float64 parts, as complex64: cos and sin separately (4x
    faster than a float64 ``torch.polar`` on the CPU, same values)."""
    return torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase)).to(
        torch.complex64)


def _band_limit(
    size: tuple[int, int], z: torch.Tensor, wavelength_um: float, pixel_size_um: float,
    fy: torch.Tensor, fx: torch.Tensor,
) -> torch.Tensor:
    h, w = size
    limit_y = 1.0 / (wavelength_um * torch.sqrt((2 * z.abs() / (h * pixel_size_um)) ** 2 + 1))
    limit_x = 1.0 / (wavelength_um * torch.sqrt((2 * z.abs() / (w * pixel_size_um)) ** 2 + 1))
    return ((fy.abs() < limit_y) & (fx.abs() < limit_x)).to(torch.float64)


def fresnel_kernel(
    size: tuple[int, int],
    z_um: torch.Tensor,
    wavelength_um: float,
    pixel_size_um: float,
    *,
    medium_index: float = 1.0,
) -> torch.Tensor:
    """Paraxial (Fresnel) transfer functions ``exp(-i pi lambda z f^2)``, shape ``z.shape + (H, W)``.

    The small-angle limit of the angular spectrum: the same for ``lambda f << 1``; kept for
    comparison with the literature and for setups that assume it.
    """
    fy, fx = _frequencies(size, pixel_size_um)
    z = z_um.to(torch.float64).reshape(*z_um.shape, 1, 1)
    phase = -math.pi * (wavelength_um / medium_index) * z * (fy**2 + fx**2)
    return _phasor(torch.ones_like(phase), phase)


def pupil(
    size: tuple[int, int], wavelength_um: float, pixel_size_um: float, numerical_aperture: float
) -> torch.Tensor:
    """Circular pupil ``(H, W)``: 1 for spatial frequencies below ``NA / wavelength``, else 0."""
    fy, fx = _frequencies(size, pixel_size_um)
    return ((fy**2 + fx**2) <= (numerical_aperture / wavelength_um) ** 2).to(torch.complex64)


def propagate(
    field: torch.Tensor,
    z_um: torch.Tensor,
    wavelength_um: float,
    pixel_size_um: float,
    *,
    medium_index: float = 1.0,
    propagator: Propagator = "angular_spectrum",
    band_limit: bool = False,
    numerical_aperture: float | None = None,
) -> torch.Tensor:
    """Propagate complex ``(B, 1, H, W)`` fields to distances ``z_um`` ``(B, N)`` -> ``(B, N, H, W)``.

    Periodic boundaries (FFT): pad first (``diffraction_pad_px``). Unitary for a band-limited
    field without pupil or band limit: energy is conserved and ``+z`` then ``-z`` returns it.
    """
    size = (field.shape[-2], field.shape[-1])
    if propagator == "fresnel":
        kernel = fresnel_kernel(size, z_um, wavelength_um, pixel_size_um, medium_index=medium_index)
    elif propagator == "angular_spectrum":
        kernel = angular_spectrum_kernel(size, z_um, wavelength_um, pixel_size_um,
                                         medium_index=medium_index, band_limit=band_limit)
    else:
        raise ValueError(f"propagator={propagator!r}; expected angular_spectrum or fresnel")
    if numerical_aperture is not None:
        kernel = kernel * pupil(size, wavelength_um, pixel_size_um, numerical_aperture)
    return torch.fft.ifft2(torch.fft.fft2(field) * kernel.to(field.device))


def coherence_envelope(
    size: tuple[int, int],
    z_um: torch.Tensor,
    wavelength_um: float,
    pixel_size_um: float,
    *,
    medium_index: float = 1.0,
    illumination_na: float = 0.0,
    bandwidth_um: float = 0.0,
) -> torch.Tensor:
    """Real damping ``z.shape + (H, W)`` of the intensity spectrum by partial coherence (module doc).

    1 at f = 0 (the mean intensity is kept) and everywhere at z = 0 (focus is not blurred).
    """
    fy, fx = _frequencies(size, pixel_size_um)
    f = torch.sqrt(fy**2 + fx**2)
    z = z_um.to(torch.float64).reshape(*z_um.shape, 1, 1)
    envelope = torch.ones(*z_um.shape, *size, dtype=torch.float64)
    if illumination_na > 0:
        theta = math.asin(min(illumination_na / medium_index, 1.0 - 1e-9))
        x = 2 * math.pi * z.abs() * math.tan(theta) * f
        jinc = torch.where(x > 1e-8, 2 * torch.special.bessel_j1(x) / x.clamp_min(1e-8),
                           torch.ones_like(x))
        envelope = envelope * jinc
    if bandwidth_um > 0:
        sigma_um = bandwidth_um / (2 * math.sqrt(2 * math.log(2)))  # FWHM -> std
        envelope = envelope * torch.exp(-0.5 * (math.pi * sigma_um * z * f**2 / medium_index) ** 2)
    return envelope.to(torch.float32)


def diffraction_pad_px(
    max_abs_z_um: float,
    wavelength_um: float,
    pixel_size_um: float,
    *,
    medium_index: float = 1.0,
    numerical_aperture: float | None = None,
    illumination_na: float = 0.0,
) -> int:
    """Padding per side, px, so that light from the largest distance never wraps (module doc)."""
    sin_max = wavelength_um / (2 * pixel_size_um)
    if numerical_aperture is not None:
        sin_max = min(sin_max, numerical_aperture)
    spread = _tan_of_sin(sin_max / medium_index) + _tan_of_sin(illumination_na / medium_index)
    return math.ceil(abs(max_abs_z_um) * spread / pixel_size_um)


def _tan_of_sin(s: float) -> float:
    s = min(max(s, 0.0), 0.999)
    return s / math.sqrt(1 - s * s)


@lru_cache(maxsize=64)
def _pad_index(n: int, before: int, after: int, mode: PadMode) -> torch.Tensor:
    """Source indices of a padded axis; reflection repeats for pads longer than the axis (cached:
    the same few sizes recur every example; callers must not modify the result)."""
    i = torch.arange(-before, n + after)
    if mode == "edge" or n == 1:
        return i.clamp(0, n - 1)
    period = 2 * (n - 1)
    j = i.remainder(period)
    return torch.where(j >= n, period - j, j)


def pad_field(x: torch.Tensor, pad_yx: tuple[int, int], mode: PadMode) -> torch.Tensor:
    """Pad ``(..., H, W)`` by ``pad_yx`` px per side: reflect (any length), edge or zero."""
    py, px = pad_yx
    if not (py or px):
        return x
    if mode == "zero":
        return torch.nn.functional.pad(x, (px, px, py, py))
    h, w = x.shape[-2:]
    iy = _pad_index(h, py, py, mode).to(x.device)
    ix = _pad_index(w, px, px, mode).to(x.device)
    return x.index_select(-2, iy).index_select(-1, ix)


def fourier_shift(x: torch.Tensor, shift_px: torch.Tensor) -> torch.Tensor:
    """Shift real ``(B, N, H, W)`` images by ``shift_px`` ``(B, N, 2)`` = (dy, dx) px (sub-pixel,
    periodic: shift padded images, then crop)."""
    fy, fx = _frequencies((x.shape[-2], x.shape[-1]), 1.0)
    s = shift_px.to(torch.float64)
    ramp = -2 * math.pi * (s[..., 0, None, None] * fy + s[..., 1, None, None] * fx)
    factor = torch.polar(torch.ones_like(ramp), ramp).to(torch.complex64).to(x.device)
    return torch.fft.ifft2(torch.fft.fft2(x) * factor).real


class TransferCache:
    """Per-distance transfer functions (kernel x pupil) and coherence envelopes of one simulator.

    A kernel built from scratch cost several times the FFTs it feeds (3.2 ms against 0.8 ms for
    two planes on a 192 px grid) and was rebuilt for every example. Here the parts that do not
    depend on z (frequencies, the square root, the pass mask) are built once per grid, and each
    ``(grid, distance, device)`` kernel is kept, least recently used first out, within
    ``max_bytes``: without jitter every example reuses the same few kernels, and a batch builds
    each distinct distance once. Values are those of the public functions (same float64 steps).
    """

    def __init__(self, config: DefocusConfig, max_bytes: int = 256 * 2**20) -> None:
        self.config = config
        self.max_bytes = max_bytes
        # Jittered distances are drawn anew per example: keep only the per-grid parts.
        self.keep_distances = config.defocus_jitter_um == 0 and config.focus_offset_um == 0
        self._entries: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._bases: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        self._entries.clear()
        self._bases.clear()
        self._bytes = 0

    def kernels(self, size: tuple[int, int], z_um: torch.Tensor, device: torch.device
                ) -> torch.Tensor:
        """Complex64 transfer functions ``(B, N, H, W)`` for distances ``z_um`` ``(B, N)``
        (``(1, N, H, W)`` when every row of ``z_um`` is the same: it broadcasts)."""
        return self._lookup("kernel", size, z_um, device, self._build_kernels)

    def envelopes(self, size: tuple[int, int], z_um: torch.Tensor, device: torch.device
                  ) -> torch.Tensor:
        """Float32 coherence envelopes, shaped like ``kernels``."""
        return self._lookup("envelope", size, z_um, device, self._build_envelopes)

    def _build_kernels(self, size: tuple[int, int], z: torch.Tensor) -> torch.Tensor:
        """``(len(z), H, W)`` complex64, the same values as ``angular_spectrum_kernel`` /
        ``fresnel_kernel`` x ``pupil`` (same float64 operations, in the same order)."""
        c = self.config
        f2, delta, keep = self._base(size)
        zz = z.to(torch.float64).view(-1, 1, 1)
        if c.propagator == "fresnel":
            phase = -math.pi * (c.wavelength_um / c.medium_index) * zz * f2
        else:
            phase = 2 * math.pi * zz * delta
        magnitude = keep.expand_as(phase)
        if c.band_limited and c.propagator == "angular_spectrum":
            fy, fx = _frequencies(size, c.pixel_size_um)
            magnitude = magnitude * _band_limit(size, zz, c.wavelength_um / c.medium_index,
                                                c.pixel_size_um, fy, fx)
        return _phasor(magnitude, phase)

    def _base(self, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Distance-independent float64 parts, cached per grid: ``f^2``, ``delta`` (the kernel
        phase per 2 pi um of z) and the pass mask (propagating frequencies x NA pupil)."""
        key = ("base", size)
        if key not in self._bases:
            c = self.config
            fy, fx = _frequencies(size, c.pixel_size_um)
            f2 = fy**2 + fx**2
            k = c.medium_index / c.wavelength_um  # 1 / wavelength in the medium
            delta = -f2 / (k + torch.sqrt((k**2 - f2).clamp_min(0.0)))
            keep = torch.ones_like(f2) if c.propagator == "fresnel" else (f2 < k**2).double()
            if c.numerical_aperture is not None:
                keep = keep * (f2 <= (c.numerical_aperture / c.wavelength_um) ** 2)
            self._bases[key] = (f2, delta, keep)
        return self._bases[key]

    def _build_envelopes(self, size: tuple[int, int], z: torch.Tensor) -> torch.Tensor:
        c = self.config
        return coherence_envelope(size, z, c.wavelength_um, c.pixel_size_um,
                                  medium_index=c.medium_index, illumination_na=c.illumination_na,
                                  bandwidth_um=c.bandwidth_um)

    def _lookup(self, kind: str, size: tuple[int, int], z_um: torch.Tensor, device: torch.device,
                build) -> torch.Tensor:
        if not self.keep_distances:  # jittered: distances never repeat, storing them is waste
            return build(size, z_um.detach().cpu().reshape(-1)).to(device).view(
                *z_um.shape, *size)
        rows = z_um.detach().cpu().tolist()
        same = all(r == rows[0] for r in rows)
        values = rows[0] if same else [v for r in rows for v in r]
        key0 = (kind, size, str(device), str(z_um.dtype))
        missing = [v for v in dict.fromkeys(values) if (*key0, v) not in self._entries]
        if missing:
            self.misses += len(missing)
            built = build(size, torch.tensor(missing, dtype=z_um.dtype)).to(device)
            for v, t in zip(missing, built, strict=True):
                self._store((*key0, v), t.clone())  # own storage: the byte budget is exact
        self.hits += len(values) - len(missing)
        found = []
        for v in values:
            key = (*key0, v)
            if key in self._entries:
                self._entries.move_to_end(key)
                found.append(self._entries[key])
            else:  # evicted within this call (more distances than max_bytes holds)
                found.append(build(size, torch.tensor([v], dtype=z_um.dtype))[0].to(device))
        stacked = torch.stack(found)
        return stacked.view(1 if same else z_um.shape[0], z_um.shape[1], *size)

    def _store(self, key: tuple, value: torch.Tensor) -> None:
        nbytes = value.numel() * value.element_size()
        if nbytes > self.max_bytes:
            return
        self._entries[key] = value
        self._bytes += nbytes
        while self._bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self._bytes -= old.numel() * old.element_size()


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


class PlaneShift:
    """Per-plane lateral misregistration, uniform in ``+/- max_px`` along y and x.

    A stage that moves in z also moves a little sideways; ``sample`` returns
    ``{"shift_px": (batch, N, 2)}`` (dy, dx).
    """

    def __init__(self, planes: int, max_px: float) -> None:
        self.planes, self.max_px = planes, max_px

    def sample(self, batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        u = torch.rand(batch, self.planes, 2, generator=generator)
        return {"shift_px": (2 * u - 1) * self.max_px}


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
        self.shifts = PlaneShift(len(c.defocus_um), c.plane_shift_px)
        self.transfer = TransferCache(c)

    def pad_px(self, size: tuple[int, int], max_abs_z_um: float) -> tuple[int, int]:
        """Padding per side ``(y, x)``: ``pad_fraction`` of the size, at least the diffraction
        spread of ``max_abs_z_um`` when ``auto_pad`` (module doc)."""
        c = self.config
        pad = [round(c.pad_fraction * s) for s in size]
        if c.auto_pad:
            spread = diffraction_pad_px(
                max_abs_z_um, c.wavelength_um, c.pixel_size_um, medium_index=c.medium_index,
                numerical_aperture=c.numerical_aperture, illumination_na=c.illumination_na,
            )
            pad = [max(p, spread) for p in pad]
        return pad[0], pad[1]

    def forward(
        self,
        phase: torch.Tensor,
        amplitude: torch.Tensor,
        defocus_um: torch.Tensor,
        shift_px: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Noiseless intensities ``(B, N, H, W)`` of ``amplitude * exp(i phase)`` (both
        ``(B, 1, H, W)``) at distances ``defocus_um`` ``(B, N)``; ``shift_px`` ``(B, N, 2)``
        moves each plane sideways (dy, dx) px."""
        c = self.config
        h, w = phase.shape[-2:]
        max_z = float(defocus_um.abs().max()) if defocus_um.numel() else 0.0
        pad_y, pad_x = self.pad_px((h, w), max_z)
        field = torch.polar(amplitude.float(), phase.float())
        field = pad_field(field, (pad_y, pad_x), c.pad_mode)
        padded = (field.shape[-2], field.shape[-1])
        kernel = self.transfer.kernels(padded, defocus_um, field.device)
        out = torch.fft.ifft2(torch.fft.fft2(field) * kernel)
        intensity = out.real**2 + out.imag**2
        if c.illumination_na > 0 or c.bandwidth_um > 0:
            envelope = self.transfer.envelopes(padded, defocus_um, intensity.device)
            spectrum = torch.fft.fft2(intensity) * envelope
            intensity = torch.fft.ifft2(spectrum).real.clamp_min(0.0)
        if shift_px is not None:
            intensity = fourier_shift(intensity, shift_px).clamp_min(0.0)
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
        shift_px = self.shifts.sample(batch, generator)["shift_px"] if c.plane_shift_px > 0 else None
        inputs = self.add_noise(self(phase, amplitude, defocus_um, shift_px), generator)
        target = phase - phase.mean(dim=(2, 3), keepdim=True) if c.zero_mean_phase else phase
        if c.predict_amplitude:
            target = torch.cat([target, amplitude], dim=1)
        return inputs.float(), target.float()

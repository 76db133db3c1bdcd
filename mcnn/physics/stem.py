"""HAADF STEM at low dose: atom columns imaged with a few electrons per pixel.

Clean images are crystals: Gaussian atom columns on a random 2-D lattice (spacing, angle, a one- or
two-atom basis with Z-contrast intensities, vacancies, heavier dopants), split into up to
``max_grains`` Voronoi grains, over a smooth amorphous background from the content source, blurred
by a probe with weak tails and scanned with row jitter and slow drift.

Units: the **target is the clean image scaled to mean 1** (expected electrons per pixel divided by
the dose). The input is ``counts / dose`` with ``counts ~ Poisson(dose * target)`` (+ optional
Gaussian detector noise in electrons), so input and target share units: ``E[input] = target`` and
``Var[input] = target / dose``. The scan distortion is applied to the clean image before counting, so
the network learns to denoise real-looking (imperfect) scans, not to undo the scan.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mcnn.physics.base import ContentSource, Simulator
from mcnn.physics.config import StemConfig
from mcnn.physics.functional import gaussian_blur, uniform
from mcnn.physics.noise import poisson_counts, read_noise


def snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
    """Input SNR in dB per example, the one definition used everywhere:
    ``10 log10(mean(clean^2) / mean((noisy - clean)^2))`` over each ``(C, H, W)``.

    For a mean-1 clean scan at ``dose`` e/px with Poisson noise this is about
    ``10 log10(mean(clean^2) * dose)`` (``expected_snr_db``)."""
    dims = tuple(range(1, clean.ndim))
    signal = clean.double().pow(2).mean(dim=dims)
    noise = (noisy.double() - clean.double()).pow(2).mean(dim=dims).clamp_min(1e-30)
    return (10 * torch.log10(signal / noise)).float()


def expected_snr_db(clean: torch.Tensor, dose_e_per_px: float | torch.Tensor) -> torch.Tensor:
    """The SNR (``snr_db``) that Poisson noise alone gives at ``dose``: noise power
    ``mean(clean) / dose``."""
    dims = tuple(range(1, clean.ndim))
    d = torch.as_tensor(dose_e_per_px, dtype=torch.float64)
    signal = clean.double().pow(2).mean(dim=dims)
    return (10 * torch.log10(signal * d / clean.double().mean(dim=dims))).float()


def dose_for_snr_db(snr: float, signal_power: float = 1.5) -> float:
    """Dose (e/px) at which a mean-1 scan with ``mean(clean^2) = signal_power`` has ``snr`` dB."""
    return 10 ** (snr / 10) / signal_power


def splat(points: torch.Tensor, weights: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly deposit ``weights`` ``(B, S)`` at ``points`` ``(B, S, 2)`` (x, y in px) on a grid.

    Returns ``(B, 1, H, W)``; points outside the grid deposit nothing. The total deposited equals
    the sum of weights of points whose four neighbours are inside.
    """
    b, s, _ = points.shape
    h, w = size
    x, y = points[..., 0], points[..., 1]
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    out = torch.zeros(b * h * w)
    batch_offset = (torch.arange(b) * h * w).view(b, 1)
    for dy, dx, wt in (
        (0, 0, (1 - fx) * (1 - fy)),
        (0, 1, fx * (1 - fy)),
        (1, 0, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        xi, yi = (x0 + dx).long(), (y0 + dy).long()
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        index = (batch_offset + yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).flatten()
        out.index_add_(0, index, (weights * wt * inside).flatten())
    return out.view(b, 1, h, w)


class StemAdfSimulator(Simulator):
    """Pairs ``(noisy counts / dose, clean image with mean 1)``; 1 channel each, scale 1."""

    in_channels = 1
    out_channels = 1
    scale = 1

    def __init__(self, config: StemConfig | None = None) -> None:
        super().__init__()
        self.config = config or StemConfig()

    def lattice(
        self, batch: int, size: tuple[int, int], generator: torch.Generator
    ) -> torch.Tensor:
        """Column intensities (peak ~1) splatted on the grid, ``(B, 1, H, W)``, before the probe."""
        c = self.config
        h, w = size
        diag = math.hypot(h, w)
        spacing_range, _ = c.px_ranges()
        n_side = math.ceil(diag / (0.8 * spacing_range[0])) + 1
        ij = torch.arange(-n_side, n_side + 1, dtype=torch.float32)
        ii, jj = torch.meshgrid(ij, ij, indexing="ij")
        ii, jj = ii.flatten().view(1, -1), jj.flatten().view(1, -1)
        centre = torch.tensor([(w - 1) / 2, (h - 1) / 2])
        # Grain seeds: grain 0 always exists; others with probability, Voronoi in the image.
        n_grain = c.max_grains
        seeds = torch.rand(batch, n_grain, 2, generator=generator) * torch.tensor([w, h])
        used = torch.rand(batch, n_grain, generator=generator) < 0.5
        used[:, 0] = True
        points, weights = [], []
        for g in range(n_grain):
            spacing = uniform(batch, *spacing_range, generator).view(batch, 1)
            ratio = uniform(batch, 1.0, 1.4, generator).view(batch, 1)
            theta = uniform(batch, 0.0, math.pi, generator).view(batch, 1)
            gamma = torch.where(
                torch.rand(batch, 1, generator=generator) < 0.5,
                torch.full((batch, 1), math.pi / 2),
                torch.full((batch, 1), math.pi / 3),
            )
            a1 = torch.stack([torch.cos(theta), torch.sin(theta)], -1) * spacing.unsqueeze(-1)
            a2 = torch.stack([torch.cos(theta + gamma), torch.sin(theta + gamma)], -1) * (
                spacing * ratio
            ).unsqueeze(-1)
            shift = torch.rand(batch, 1, 2, generator=generator) * spacing.unsqueeze(-1)
            sites = centre + shift + ii.unsqueeze(-1) * a1 + jj.unsqueeze(-1) * a2  # (B, S, 2)
            # A second basis atom (another species) at a random fraction of the cell.
            basis = torch.rand(batch, 1, 2, generator=generator)
            second = sites + basis[..., :1] * a1 + basis[..., 1:] * a2
            has_second = torch.rand(batch, 1, generator=generator) < 0.5
            species = uniform(batch * 2, 0.3, 1.0, generator).view(batch, 2)
            species = species / species.amax(dim=1, keepdim=True)  # brightest species = 1
            for k, pos in enumerate((sites, second)):
                s = pos.shape[1]
                z = species[:, k : k + 1].expand(batch, s)
                z = z * (1 + 0.1 * torch.randn(batch, s, generator=generator))  # thickness
                vac = torch.rand(batch, s, generator=generator) < (
                    c.vacancy_fraction_max * torch.rand(batch, 1, generator=generator)
                )
                dop = torch.rand(batch, s, generator=generator) < (
                    c.dopant_fraction_max * torch.rand(batch, 1, generator=generator)
                )
                z = torch.where(dop, z * 1.8, z) * ~vac
                if k == 1:
                    z = z * has_second
                # Keep a site only in its own grain (nearest used seed).
                dist = torch.cdist(pos, seeds)  # (B, S, G)
                dist = dist.masked_fill(~used.unsqueeze(1), float("inf"))
                z = z * (dist.argmin(dim=2) == g) * used[:, g : g + 1]
                points.append(pos)
                weights.append(z.clamp_min(0))
        return splat(torch.cat(points, 1), torch.cat(weights, 1), size)

    def clean(
        self, batch: int, size: tuple[int, int], generator: torch.Generator, content: ContentSource
    ) -> torch.Tensor:
        """Clean scans ``(B, 1, H, W)`` normalised to mean 1."""
        c = self.config
        sigma = uniform(batch, *c.px_ranges()[1], generator)
        impulses = self.lattice(batch, size, generator)
        columns = torch.cat(
            [gaussian_blur(impulses[i : i + 1], float(sigma[i])) for i in range(batch)]
        ) * (2 * math.pi * sigma.view(-1, 1, 1, 1) ** 2)  # peak height ~ column intensity
        if c.probe_tail_fraction > 0:
            tails = torch.cat(
                [gaussian_blur(columns[i : i + 1], 4 * float(sigma[i])) for i in range(batch)]
            )
            columns = (1 - c.probe_tail_fraction) * columns + c.probe_tail_fraction * tails
        background = content.sample(batch, size, generator, channels=1)
        background = (
            gaussian_blur(background, 2.0)
            * c.background_max
            * torch.rand(batch, 1, 1, 1, generator=generator)
        )
        image = self.distort(columns + background + 1e-3, generator)
        return image / image.mean(dim=(2, 3), keepdim=True)

    def distort(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Scan distortion: each row shifted by white jitter plus a slow linear drift (px)."""
        c = self.config
        b, _, h, w = image.shape
        if c.scan_jitter_px == 0 and c.drift_px_max == 0:
            return image
        rows = torch.linspace(0, 1, h).view(1, h)
        drift_x = (2 * torch.rand(b, 1, generator=generator) - 1) * c.drift_px_max
        drift_y = (2 * torch.rand(b, 1, generator=generator) - 1) * c.drift_px_max
        shift_x = drift_x * rows + c.scan_jitter_px * torch.randn(b, h, generator=generator)
        shift_y = drift_y * rows
        xs = torch.arange(w, dtype=torch.float32).view(1, 1, w)
        ys = torch.arange(h, dtype=torch.float32).view(1, h, 1)
        gx = (xs + shift_x.unsqueeze(-1)) * 2 / max(w - 1, 1) - 1
        gy = (ys + shift_y.unsqueeze(-1)).expand(b, h, w) * 2 / max(h - 1, 1) - 1
        grid = torch.stack([gx.expand(b, h, w), gy], dim=-1)
        return F.grid_sample(
            image, grid, mode="bilinear", padding_mode="border", align_corners=True
        )

    def forward(
        self, clean: torch.Tensor, dose_e_per_px: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Noisy measurement in target units: ``Poisson(dose * clean) / dose`` (+ detector noise,
        row offsets, hot and dead pixels when configured; each drawn per frame)."""
        c = self.config
        counts = poisson_counts(clean, dose_e_per_px, generator)
        counts = read_noise(counts, c.detector_noise_e, generator)  # electrons
        b, ch, h, w = counts.shape
        if c.row_offset_e > 0:
            counts = counts + c.row_offset_e * torch.randn(b, ch, h, 1, generator=generator)
        dose = dose_e_per_px.view(-1, 1, 1, 1)
        if c.hot_pixel_fraction > 0:
            hot = torch.rand(counts.shape, generator=generator) < c.hot_pixel_fraction
            level = uniform(b, 5.0, 20.0, generator).view(-1, 1, 1, 1) * dose
            counts = torch.where(hot, level.expand_as(counts), counts)
        if c.dead_pixel_fraction > 0:
            dead = torch.rand(counts.shape, generator=generator) < c.dead_pixel_fraction
            counts = counts.masked_fill(dead, 0.0)
        return counts / dose

    def sample(
        self,
        batch: int,
        size: tuple[int, int],
        generator: torch.Generator,
        content: ContentSource,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        target = self.clean(batch, size, generator, content)
        dose = uniform(batch, *self.config.dose_e_per_px_range, generator, log=True)
        return self(target, dose, generator).float(), target.float()

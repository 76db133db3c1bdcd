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

Options for a demanding user (all off by default; off, they draw no random numbers, so existing
configs give the same frames): vacuum beyond a soft crystal edge or around a particle (real vacuum
has ~0 HAADF signal: a 1e-3 floor before normalisation), natural content images as targets (the
paper's first training stage), scan afterglow and read noise correlated along the scan rows,
grains that are zone-axis projections of real crystals (``stem_structures``) and frames of sub-nm
clusters and single heavy atoms on an amorphous support (``stem_clusters``).
``StemAdfSimulator.clean_with_truth`` gives the true column positions and the vacuum mask that the
benchmark scores against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


@dataclass
class StemTruth:
    """Clean frames with what they show: ``clean`` ``(B, 1, H, W)`` mean 1; per frame the true
    column ``positions`` ``(K, 2)`` (row, col) px after the scan distortion, their ``weights``
    ``(K,)`` relative to the frame's brightest column (times the crystal mask at the column);
    ``vacuum`` ``(B, H, W)`` bool, pixels at least one maximum spacing beyond the crystal edge;
    ``natural`` ``(B,)`` bool, frames whose target is a content image (no columns, no vacuum);
    ``sigma_px`` ``(B,)`` the probe-blurred column sigma of each frame."""

    clean: torch.Tensor
    positions: list[torch.Tensor]
    weights: list[torch.Tensor]
    vacuum: torch.Tensor
    natural: torch.Tensor
    sigma_px: torch.Tensor


def _harmonics(t: torch.Tensor, coef: torch.Tensor, phase: torch.Tensor, base: int) -> torch.Tensor:
    """``sum_k coef_k sin((base + k) t + phase_k) / |coef|``: a smooth random wobble of std ~0.7."""
    k = torch.arange(coef.shape[0], dtype=t.dtype) + base
    waves = torch.sin(t.unsqueeze(-1) * k + phase) * coef
    return waves.sum(-1) / coef.norm().clamp_min(1e-6)


def crystal_masks(
    config: StemConfig, batch: int, size: tuple[int, int], sigma_px: torch.Tensor,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the crystal is: ``keep`` ``(B, H, W)`` (1 in the crystal, 0 in vacuum, a sigmoid edge
    ``sigma_px`` wide) and the ``vacuum`` mask ``(B, H, W)`` (one maximum spacing beyond the
    edge). A frame gets vacuum with ``vacuum_probability``: a half-plane at a random angle (edge
    wobbling by up to ``vacuum_edge_roughness_px``) or, with ``vacuum_particle_fraction``, a blob
    of crystal (a nanoparticle) in vacuum; the vacuum share is drawn from ``vacuum_fraction_range``.
    Draws the same numbers whatever the outcome, so one frame's shape does not change the next."""
    c = config
    h, w = size
    has = torch.rand(batch, generator=generator) < c.vacuum_probability
    fraction = uniform(batch, *c.vacuum_fraction_range, generator)
    theta = torch.rand(batch, generator=generator) * 2 * math.pi
    particle = torch.rand(batch, generator=generator) < c.vacuum_particle_fraction
    centre = 0.25 + 0.5 * torch.rand(batch, 2, generator=generator)
    coef = torch.randn(batch, 3, generator=generator)
    phase = torch.rand(batch, 3, generator=generator) * 2 * math.pi
    amp = torch.rand(batch, generator=generator) * c.vacuum_edge_roughness_px
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing="ij")
    keep = torch.ones(batch, h, w)
    vacuum = torch.zeros(batch, h, w, dtype=torch.bool)
    margin = c.px_ranges()[0][1]
    for i in range(batch):
        if not has[i]:
            continue
        if particle[i]:
            dy, dx = yy - centre[i, 0] * (h - 1), xx - centre[i, 1] * (w - 1)
            shape = 1 + 0.15 * _harmonics(torch.atan2(dy, dx), coef[i], phase[i], 2)
            d = torch.hypot(dy, dx) / shape.clamp_min(0.5)  # ~px beyond the centre
        else:
            ct, st = torch.cos(theta[i]), torch.sin(theta[i])
            along = (-xx * st + yy * ct) * (2 * math.pi / max(h, w))
            d = xx * ct + yy * st - amp[i] * _harmonics(along, coef[i], phase[i], 1)
        edge = torch.quantile(d.flatten(), 1 - float(fraction[i]))
        keep[i] = torch.sigmoid(-(d - edge) / float(sigma_px[i]))
        vacuum[i] = d > edge + margin
    return keep, vacuum


class StemAdfSimulator(Simulator):
    """Pairs ``(noisy counts / dose, clean image with mean 1)``; 1 channel each, scale 1."""

    in_channels = 1
    out_channels = 1
    scale = 1

    def __init__(self, config: StemConfig | None = None) -> None:
        super().__init__()
        self.config = config or StemConfig()

    def columns(
        self, batch: int, size: tuple[int, int], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Column positions ``(B, S, 2)`` (x, y px, before the scan) and intensities ``(B, S)``
        (peak ~1; 0 for vacancies and sites outside their grain) of random lattices."""
        return self._random_lattices(batch, size, generator)[:2]

    def _random_lattices(
        self, batch: int, size: tuple[int, int], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``columns`` and the grains: seeds ``(B, G, 2)`` x, y px, ``used`` ``(B, G)`` and the
        grain ``(S,)`` each column was drawn for."""
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
        grain_of = torch.arange(n_grain).repeat_interleave(2 * ii.shape[1])
        return torch.cat(points, 1), torch.cat(weights, 1), seeds, used, grain_of

    def lattice(
        self, batch: int, size: tuple[int, int], generator: torch.Generator
    ) -> torch.Tensor:
        """Column intensities (peak ~1) splatted on the grid, ``(B, 1, H, W)``, before the probe."""
        points, weights = self.columns(batch, size, generator)
        return splat(points, weights, size)

    def clean(
        self, batch: int, size: tuple[int, int], generator: torch.Generator, content: ContentSource
    ) -> torch.Tensor:
        """Clean scans ``(B, 1, H, W)`` normalised to mean 1."""
        return self._render(batch, size, generator, content, None).clean

    def clean_with_truth(
        self, batch: int, size: tuple[int, int], generator: torch.Generator,
        content: ContentSource, min_weight_fraction: float = 0.2,
    ) -> StemTruth:
        """``clean`` (the same frames from the same generator) with the ground truth a scorer
        needs: true column positions with weight above ``min_weight_fraction`` of the frame's
        brightest column, inside the frame, not in vacuum; and the vacuum mask."""
        return self._render(batch, size, generator, content, min_weight_fraction)

    def _render(
        self, batch: int, size: tuple[int, int], generator: torch.Generator,
        content: ContentSource, min_weight_fraction: float | None,
    ) -> StemTruth:
        """The frames, and their true columns unless ``min_weight_fraction`` is None (training
        does not need them)."""
        c = self.config
        h, w = size
        # Random draws in the order of the options' history (new options draw last, and only
        # when on), so that a config without them gives the same frames as before they existed.
        sigma = uniform(batch, *c.px_ranges()[1], generator)
        points, weights, seeds, used, grain_of = self._random_lattices(batch, size, generator)
        background = content.sample(batch, size, generator, channels=1)
        background = (
            gaussian_blur(background, 2.0)
            * c.background_max
            * torch.rand(batch, 1, 1, 1, generator=generator)
        )
        shifts = self.scan_shifts(batch, h, generator)
        keep = torch.ones(batch, h, w)
        vacuum = torch.zeros(batch, h, w, dtype=torch.bool)
        if c.vacuum_probability > 0:
            keep, vacuum = crystal_masks(c, batch, size, sigma, generator)
        natural = torch.zeros(batch, dtype=torch.bool)
        if c.natural_image_fraction > 0:
            natural = torch.rand(batch, generator=generator) < c.natural_image_fraction
            pictures = content.sample(batch, size, generator, channels=1).float() + 1e-3
        impulses = splat(points, weights, size)
        if c.structure_fraction > 0 or c.cluster_frame_fraction > 0:
            points, weights, impulses = self._real_atoms(
                points, weights, seeds, used, grain_of, size, generator)
        columns = torch.cat(
            [gaussian_blur(impulses[i : i + 1], float(sigma[i])) for i in range(batch)]
        ) * (2 * math.pi * sigma.view(-1, 1, 1, 1) ** 2)  # peak height ~ column intensity
        if c.probe_tail_fraction > 0:
            tails = torch.cat(
                [gaussian_blur(columns[i : i + 1], 4 * float(sigma[i])) for i in range(batch)]
            )
            columns = (1 - c.probe_tail_fraction) * columns + c.probe_tail_fraction * tails
        image = self.apply_scan(columns + background + 1e-3, shifts)
        if c.vacuum_probability > 0:
            image = (image - 1e-3) * keep.unsqueeze(1) + 1e-3  # vacuum: only the 1e-3 floor
        image = image / image.mean(dim=(2, 3), keepdim=True)
        if c.natural_image_fraction > 0:
            pictures = pictures / pictures.mean(dim=(2, 3), keepdim=True)
            image = torch.where(natural.view(-1, 1, 1, 1), pictures, image)
            vacuum = vacuum & ~natural.view(-1, 1, 1)
        positions: list[torch.Tensor] = []
        rel_weights: list[torch.Tensor] = []
        if min_weight_fraction is not None:
            positions, rel_weights = self._true_columns(
                points, weights, shifts, keep, vacuum, natural, size, min_weight_fraction)
        return StemTruth(image, positions, rel_weights, vacuum, natural, sigma)

    def _real_atoms(
        self, points: torch.Tensor, weights: torch.Tensor, seeds: torch.Tensor,
        used: torch.Tensor, grain_of: torch.Tensor, size: tuple[int, int],
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Swap grains for real crystal projections (``structure_fraction``) and frames for
        clusters on a support (``cluster_frame_fraction``). Returns the columns (points,
        weights: what ``clean_with_truth`` reports) and all impulses, support atoms included."""
        from mcnn.physics.stem_clusters import cluster_scene
        from mcnn.physics.stem_structures import structure_grains

        c = self.config
        if c.structure_fraction > 0:
            more, more_w, replaced = structure_grains(c, seeds, used, size, generator)
            weights = weights * ~replaced[:, grain_of]
            points, weights = torch.cat([points, more], 1), torch.cat([weights, more_w], 1)
        support = None
        if c.cluster_frame_fraction > 0:
            scene = cluster_scene(c, points.shape[0], size, generator)
            weights = weights * ~scene.frames.view(-1, 1)
            points = torch.cat([points, scene.heavy_points], 1)
            weights = torch.cat([weights, scene.heavy_weights], 1)
            support = splat(scene.support_points, scene.support_weights, size)
        impulses = splat(points, weights, size)
        return points, weights, impulses if support is None else impulses + support

    def _true_columns(
        self, points: torch.Tensor, weights: torch.Tensor,
        shifts: tuple[torch.Tensor, torch.Tensor] | None, keep: torch.Tensor,
        vacuum: torch.Tensor, natural: torch.Tensor, size: tuple[int, int], min_fraction: float,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Where each column appears in the scanned frame, (row, col) px: the scan samples row
        ``r`` at ``(r + shift_y[r], c + shift_x[r])``, so a column at (x, y) shows at the row
        solving ``r + shift_y(r) = y`` and the column ``x - shift_x(r)``."""
        h, w = size
        x, y = points[..., 0], points[..., 1]
        if shifts is not None:
            shift_x, drift_y = shifts
            row = y / (1 + drift_y.view(-1, 1) / max(h - 1, 1))
            r = row.clamp(0, h - 1)
            r0 = r.floor().long().clamp(0, h - 1)
            r1 = (r0 + 1).clamp(max=h - 1)
            f = r - r0
            sx = shift_x.gather(1, r0) * (1 - f) + shift_x.gather(1, r1) * f
            col = x - sx
        else:
            row, col = y, x
        positions, rel = [], []
        for i in range(points.shape[0]):
            inside = (row[i] >= 0) & (row[i] <= h - 1) & (col[i] >= 0) & (col[i] <= w - 1)
            brightest = float(weights[i][inside].max()) if inside.any() else 0.0
            if natural[i] or brightest <= 0:
                positions.append(torch.zeros(0, 2))
                rel.append(torch.zeros(0))
                continue
            ri, ci = row[i].round().long().clamp(0, h - 1), col[i].round().long().clamp(0, w - 1)
            eff = weights[i] * keep[i, ri, ci] / brightest
            ok = inside & (eff > min_fraction) & ~vacuum[i, ri, ci]
            positions.append(torch.stack([row[i][ok], col[i][ok]], -1))
            rel.append(eff[ok])
        return positions, rel

    def scan_shifts(
        self, batch: int, h: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Per-row sampling shifts of the scan: ``shift_x`` ``(B, H)`` px (white jitter plus a
        linear drift) and the slow-axis drift ``drift_y`` ``(B,)`` px over the frame; ``None``
        when the scan is perfect (then nothing is drawn)."""
        c = self.config
        if c.scan_jitter_px == 0 and c.drift_px_max == 0:
            return None
        rows = torch.linspace(0, 1, h).view(1, h)
        drift_x = (2 * torch.rand(batch, 1, generator=generator) - 1) * c.drift_px_max
        drift_y = (2 * torch.rand(batch, 1, generator=generator) - 1) * c.drift_px_max
        shift_x = drift_x * rows + c.scan_jitter_px * torch.randn(batch, h, generator=generator)
        return shift_x, drift_y.view(batch)

    def distort(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Scan distortion: each row shifted by white jitter plus a slow linear drift (px)."""
        return self.apply_scan(image, self.scan_shifts(image.shape[0], image.shape[2], generator))

    def apply_scan(
        self, image: torch.Tensor, shifts: tuple[torch.Tensor, torch.Tensor] | None
    ) -> torch.Tensor:
        """Resample ``image`` ``(B, 1, H, W)`` as the scan with ``shifts`` (``scan_shifts``) sees it."""
        if shifts is None:
            return image
        b, _, h, w = image.shape
        shift_x, drift_y = shifts
        rows = torch.linspace(0, 1, h).view(1, h)
        shift_y = drift_y.view(b, 1) * rows
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
        """Noisy measurement in target units: ``Poisson(dose * clean) / dose`` (+ scan afterglow,
        detector noise (white or correlated along rows), row offsets, hot and dead pixels when
        configured; each drawn per frame)."""
        c = self.config
        counts = poisson_counts(clean, dose_e_per_px, generator)
        if c.scan_afterglow_range is not None:
            fractions = uniform(counts.shape[0], *c.scan_afterglow_range, generator)
            counts = torch.cat([afterglow(frame[None], float(a)) if a > 0 else frame[None]
                                for frame, a in zip(counts, fractions, strict=True)])
        elif c.scan_afterglow > 0:
            counts = afterglow(counts, c.scan_afterglow)
        if c.noise_correlation_px > 0:
            counts = counts + c.detector_noise_e * row_correlated_normal(
                counts, c.noise_correlation_px, generator)
        else:
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


def _conv_rows(x: torch.Tensor, kernel: torch.Tensor, causal: bool) -> torch.Tensor:
    """Convolve every row of ``x`` ``(B, C, H, W)`` with a 1-D ``kernel`` (reflect padding for a
    centred kernel; for a causal one, the row's first value stands for the pixels before it)."""
    b, ch, h, w = x.shape
    rows = x.reshape(b * ch * h, 1, w)
    n = kernel.numel()
    if causal:
        rows = torch.cat([rows[..., :1].expand(-1, -1, n - 1), rows], dim=-1)
        k = kernel.flip(0)  # conv1d correlates: flip so that kernel[j] weights x[i - j]
    else:
        pad = min(n // 2, w - 1)
        rows = F.pad(rows, (pad, pad), mode="reflect") if pad > 0 else rows
        k = kernel[n // 2 - pad : n // 2 + pad + 1] if pad < n // 2 else kernel
    out = F.conv1d(rows, k.to(x.dtype).view(1, 1, -1))
    return out.reshape(b, ch, h, w)


def afterglow(counts: torch.Tensor, fraction: float) -> torch.Tensor:
    """Detector afterglow along the fast scan: ``y[j] = (1 - a) x[j] + a y[j-1]`` per row, which
    keeps the mean and gives white noise a lag-1 correlation ``a`` (``a`` = ``fraction``)."""
    n = max(2, min(counts.shape[-1], math.ceil(math.log(1e-4) / math.log(fraction)) + 1))
    kernel = (1 - fraction) * fraction ** torch.arange(n, dtype=torch.float64)
    kernel = kernel / kernel.sum()
    return _conv_rows(counts, kernel.float(), causal=True)


def row_correlated_normal(
    like: torch.Tensor, length_px: float, generator: torch.Generator
) -> torch.Tensor:
    """Unit-variance Gaussian noise of ``like``'s shape, correlated along rows only: white noise
    filtered with a Gaussian of std ``length_px / sqrt(2)``, so the autocorrelation along a row is
    ``exp(-lag^2 / (2 length_px^2))`` (lag 1: ``exp(-1 / (2 L^2))``) and 0 across rows."""
    s = length_px / math.sqrt(2)
    r = torch.arange(-math.ceil(4 * s), math.ceil(4 * s) + 1, dtype=torch.float64)
    kernel = torch.exp(-(r**2) / (2 * s**2))
    kernel = kernel / kernel.pow(2).sum().sqrt()  # unit variance out of unit-variance white noise
    z = torch.randn(like.shape, generator=generator, dtype=like.dtype)
    return _conv_rows(z, kernel.float(), causal=False)

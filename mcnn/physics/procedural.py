"""Procedural ground truth: smooth random fields, soft-edged shapes and textures, mixed per sample.

Natural images have a roughly ``1 / f**2`` power spectrum, sharp edges between regions and
repeating texture; a network trained on a mix of the three generalises to real content without any
download. Everything is vectorised over the batch and drawn only from the given generator.
"""

from __future__ import annotations

import math

import torch

from mcnn.physics.functional import normalize_per_image, power_law_field, uniform

KINDS = ("field", "shapes", "texture")


def _grid(size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates ``(y, x)`` in units of the longer side, shape ``(1, 1, H, W)``."""
    h, w = size
    n = max(h, w)
    y = (torch.arange(h, dtype=torch.float32) + 0.5) / n
    x = (torch.arange(w, dtype=torch.float32) + 0.5) / n
    return y.view(1, 1, h, 1), x.view(1, 1, 1, w)


def _colours(batch: int, n: int, channels: int, generator: torch.Generator) -> torch.Tensor:
    """``(batch, n, channels)`` grey levels with a mild, correlated colour spread."""
    lum = torch.rand(batch, n, 1, generator=generator)
    chroma = 0.35 * (torch.rand(batch, n, channels, generator=generator) - 0.5)
    return (lum + chroma * (channels > 1)).clamp(0, 1)


def correlated_fields(
    batch: int,
    channels: int,
    size: tuple[int, int],
    beta: torch.Tensor,
    generator: torch.Generator,
) -> torch.Tensor:
    """Power-law fields whose channels share most of their structure (like colour images)."""
    shared = power_law_field(batch, 1, size, beta, generator)
    if channels == 1:
        return shared
    own = power_law_field(batch, channels, size, beta, generator)
    return 0.85 * shared + 0.15 * own


def random_shapes(
    batch: int,
    channels: int,
    size: tuple[int, int],
    generator: torch.Generator,
    max_shapes: int = 12,
    background: torch.Tensor | None = None,
) -> torch.Tensor:
    """Ellipses, convex polygons and thick lines with soft (0.5-2 px) edges, painted in order.

    All shapes are evaluated at once as ``(B, N, H, W)`` signed distances (grid units), then
    composited back to front with cumulative transmittances.
    """
    h, w = size
    n_px = max(h, w)
    n = max_shapes
    y, x = _grid(size)
    if background is None:
        background = torch.full((batch, channels, h, w), 0.5)

    def draw() -> torch.Tensor:
        return torch.rand(batch, n, 1, 1, generator=generator)

    cy, cx = draw() * h / n_px, draw() * w / n_px
    radius = 0.03 + 0.3 * draw() ** 2  # many small shapes, a few large ones
    aspect = 0.3 + 0.7 * draw()
    angle = math.pi * draw()
    edge = (0.5 + 1.5 * draw()) / n_px
    kind = torch.randint(0, 3, (batch, n, 1, 1), generator=generator)
    count = torch.randint(1, n + 1, (batch, 1, 1, 1), generator=generator)
    colours = _colours(batch, n, channels, generator)  # (B, N, C)
    sides = 6
    jitter = 0.4 * (torch.rand(batch, n, sides, 1, generator=generator) - 0.5)
    # Render only the slots some sample uses (all draws above are made regardless).
    n = int(count.max())
    cy, cx, radius, aspect, angle, edge, kind, colours, jitter = (
        t[:, :n] for t in (cy, cx, radius, aspect, angle, edge, kind, colours, jitter)
    )

    dy, dx = y - cy, x - cx  # (B, N, H, W)
    c, s = torch.cos(angle), torch.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    # Ellipse: approximate signed distance, ~exact near the edge.
    rho = torch.sqrt((u / radius) ** 2 + (v / (radius * aspect)) ** 2)
    d_ellipse = (rho - 1.0) * radius * aspect
    # Convex polygon: intersection of half-planes at jittered angles.
    phis = angle + jitter + (torch.arange(sides) * 2 * math.pi / sides).view(1, 1, sides, 1)
    cos_p, sin_p = torch.cos(phis).unsqueeze(-1), torch.sin(phis).unsqueeze(-1)
    d_polygon = dx * cos_p[:, :, 0] + dy * sin_p[:, :, 0]
    for j in range(1, sides):
        d_polygon = torch.maximum(d_polygon, dx * cos_p[:, :, j] + dy * sin_p[:, :, j])
    d_polygon = d_polygon - radius
    # Line segment of half-length ``radius`` and half-width ``radius * aspect / 8``.
    along = torch.minimum(torch.maximum(u, -radius), radius)
    d_line = torch.sqrt((u - along) ** 2 + v**2) - radius * aspect / 8
    dist = torch.where(kind == 0, d_ellipse, torch.where(kind == 1, d_polygon, d_line))
    active = torch.arange(n).view(1, n, 1, 1) < count
    alpha = torch.sigmoid(-dist / edge) * active  # (B, N, H, W), painted in order 0..N-1
    # Light from shape k survives all shapes painted after it: T_k = prod_{j>k} (1 - alpha_j).
    keep = torch.flip(torch.cumprod(torch.flip(1 - alpha, [1]), dim=1), [1])
    after = torch.cat([keep[:, 1:], torch.ones_like(keep[:, :1])], dim=1)
    weights = alpha * after  # (B, N, H, W)
    painted = torch.einsum("bnhw,bnc->bchw", weights, colours)
    return background * keep[:, :1] + painted


def random_texture(
    batch: int, channels: int, size: tuple[int, int], generator: torch.Generator, waves: int = 4
) -> torch.Tensor:
    """Sums of oriented gratings (0.02-0.25 cycles/px) under a smooth envelope, in [0, 1]."""
    h, w = size
    y = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1)
    x = torch.arange(w, dtype=torch.float32).view(1, 1, 1, w)
    base = torch.rand(batch, 1, 1, 1, generator=generator) * math.pi
    total = torch.zeros(batch, 1, h, w)
    for _ in range(waves):
        freq = uniform(batch, 0.02, 0.25, generator, log=True).view(batch, 1, 1, 1)
        theta = base + 0.6 * (torch.rand(batch, 1, 1, 1, generator=generator) - 0.5) * math.pi
        phase = 2 * math.pi * torch.rand(batch, 1, 1, 1, generator=generator)
        weight = torch.rand(batch, 1, 1, 1, generator=generator)
        arg = 2 * math.pi * freq * (x * torch.cos(theta) + y * torch.sin(theta)) + phase
        total = total + weight * torch.sin(arg)
    envelope = power_law_field(batch, 1, size, 3.0, generator)
    tex = normalize_per_image(total * (0.3 + envelope))
    if channels == 1:
        return tex
    tint = 0.7 + 0.6 * _colours(batch, 1, channels, generator).view(batch, channels, 1, 1)
    return (tex * tint).clamp(0, 1)


class ProceduralContent:
    """Random natural-image-like ground truth; each sample mixes fields, shapes and textures.

    ``weights`` gives the relative chance of each kind dominating a sample ("field", "shapes",
    "texture"); about half the samples are a blend of two or three kinds. ``beta_range`` bounds the
    spectral slope of the smooth fields.
    """

    def __init__(
        self,
        weights: tuple[float, float, float] = (1.0, 1.0, 0.5),
        beta_range: tuple[float, float] = (2.0, 4.0),
        max_shapes: int = 12,
    ) -> None:
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"weights must be >= 0 with a positive sum, got {weights}")
        self.weights = torch.tensor(weights, dtype=torch.float32)
        self.beta_range = beta_range
        self.max_shapes = max_shapes

    def sample(
        self, batch: int, size: tuple[int, int], generator: torch.Generator, channels: int = 1
    ) -> torch.Tensor:
        """``(batch, channels, H, W)`` float32 in [0, 1]."""
        # Draw the recipe first, so that kinds no sample in the batch uses are never rendered.
        beta = uniform(batch, *self.beta_range, generator)
        dominant = torch.multinomial(self.weights.expand(batch, -1), 1, generator=generator)
        mix = torch.rand(batch, 3, generator=generator) * self.weights
        blend = torch.rand(batch, generator=generator) < 0.5
        mix = torch.where(blend.view(batch, 1), mix, torch.zeros_like(mix))
        mix[torch.arange(batch), dominant.squeeze(1)] += 1.0
        mix = (mix / mix.sum(dim=1, keepdim=True)).view(batch, 3, 1, 1, 1)
        lo = 0.3 * torch.rand(batch, 1, 1, 1, generator=generator)
        hi = 1.0 - 0.3 * torch.rand(batch, 1, 1, 1, generator=generator)

        field = correlated_fields(batch, channels, size, beta, generator)
        img = mix[:, 0] * field
        if bool((mix[:, 1] > 0).any()):  # shapes are painted over the field
            img = img + mix[:, 1] * random_shapes(
                batch, channels, size, generator, self.max_shapes, background=field
            )
        if bool((mix[:, 2] > 0).any()):
            img = img + mix[:, 2] * random_texture(batch, channels, size, generator)
        # Random contrast and brightness: real images rarely span exactly [0, 1].
        return (lo + (hi - lo) * _joint_normalize(img)).float()


def _joint_normalize(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Stretch each sample to [0, 1] using one range across its channels (keeps colours)."""
    flat = x.flatten(1)
    lo = flat.amin(dim=1).view(-1, 1, 1, 1)
    hi = flat.amax(dim=1).view(-1, 1, 1, 1)
    return ((x - lo) / (hi - lo).clamp_min(eps)).clamp(0, 1)

"""Zone-axis projections of real crystals for the STEM simulator, and grains built from them.

Each ``CrystalProjection`` is one projected cell: 2-D cell vectors in pm and its atom columns
(fractional coordinates along the cell vectors, and the atoms a column holds per repeat along the
beam). A column's HAADF intensity is ``sum(Z ** 1.7)`` over those atoms (Z-contrast), normalised so
that the structure's brightest column is 1.

Geometry is standard crystallography (positions from the space groups; lattice constants at room
temperature, e.g. Kittel, *Introduction to Solid State Physics*, and the ICSD entries):

- ``SrTiO3[001]``: cubic perovskite Pm-3m, a = 390.5 pm. Sr at (0,0,0), Ti at (1/2,1/2,1/2),
  O at (1/2,1/2,0), (1/2,0,1/2), (0,1/2,1/2). Along [001]: Sr columns at (0,0), Ti-O columns
  (Ti + O per repeat a) at (1/2,1/2), pure O columns at (1/2,0) and (0,1/2).
- ``MoS2[001]``: 2H/1H MoS2 monolayer, hexagonal a = 316 pm (cell vectors 60 deg apart). Mo on one
  triangular sublattice, the two S of the sandwich stacked on each other (an S2 column) on the
  other: a honeycomb with Mo-S2 projected distance a / sqrt(3) = 182.4 pm.
- ``Si[110]``: diamond cubic Fd-3m, a = 543.1 pm. Projected cell a / sqrt(2) (along [1-10]) by a
  (along [001]); fcc sites project to (0,0) and (1/2,1/2), the (1/4,1/4,1/4) basis adds a column
  a / 4 = 135.8 pm further along [001]: the "dumbbells". One Si per column per repeat a / sqrt(2).
- ``Au[001]``: fcc Fm-3m, a = 407.8 pm. Four columns per a x a cell (a square net of a / 2),
  one Au per column per repeat a.
- ``Au[110]``: the fcc sites along [110]: a / sqrt(2) by a cell, columns at (0,0) and (1/2,1/2),
  one Au per column per repeat a / sqrt(2) (denser columns than [001]).
- ``graphene``: honeycomb, a = 246 pm (C-C 142 pm), Z = 6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mcnn.physics.config import StemConfig
from mcnn.physics.functional import pad_columns, row_rotation

Z_EXPONENT = 1.7  # HAADF column intensity ~ Z^1.7 (Rutherford-like, screened)
THICKNESS_JITTER = 0.1  # relative std of a column's intensity (local thickness), as the random lattices


@dataclass(frozen=True)
class Column:
    """One projected atom column: ``frac`` along (a1, a2), the ``atoms`` (Z) it holds per repeat
    along the beam, and a ``label`` for people (``"Sr"``, ``"Ti-O"``)."""

    frac: tuple[float, float]
    atoms: tuple[int, ...]
    label: str


@dataclass(frozen=True)
class CrystalProjection:
    """A crystal seen down one zone axis: cell vectors ``a1_pm``, ``a2_pm`` (x, y pm) and columns."""

    name: str
    a1_pm: tuple[float, float]
    a2_pm: tuple[float, float]
    columns: tuple[Column, ...]

    def intensities(self) -> tuple[float, ...]:
        """Each column's ``sum(Z ** 1.7)``, brightest column = 1."""
        raw = [sum(z**Z_EXPONENT for z in col.atoms) for col in self.columns]
        top = max(raw)
        return tuple(r / top for r in raw)

    def positions_pm(self) -> torch.Tensor:
        """Column positions in one cell, ``(K, 2)`` x, y pm."""
        frac = torch.tensor([col.frac for col in self.columns], dtype=torch.float64)
        cell = torch.tensor([self.a1_pm, self.a2_pm], dtype=torch.float64)
        return (frac @ cell).float()


def _hexagonal(a: float) -> tuple[tuple[float, float], tuple[float, float]]:
    return (a, 0.0), (a / 2, a * math.sqrt(3) / 2)


_SR, _TI, _O, _MO, _S, _SI, _AU, _C = 38, 22, 8, 42, 16, 14, 79, 6
_A_STO, _A_MOS2, _A_SI, _A_AU, _A_GRAPHENE = 390.5, 316.0, 543.1, 407.8, 246.0

STRUCTURES: dict[str, CrystalProjection] = {
    s.name: s
    for s in (
        CrystalProjection("SrTiO3[001]", (_A_STO, 0.0), (0.0, _A_STO), (
            Column((0.0, 0.0), (_SR,), "Sr"),
            Column((0.5, 0.5), (_TI, _O), "Ti-O"),
            Column((0.5, 0.0), (_O,), "O"),
            Column((0.0, 0.5), (_O,), "O"),
        )),
        CrystalProjection("MoS2[001]", *_hexagonal(_A_MOS2), (
            Column((1 / 3, 1 / 3), (_MO,), "Mo"),
            Column((2 / 3, 2 / 3), (_S, _S), "S2"),
        )),
        CrystalProjection("Si[110]", (_A_SI / math.sqrt(2), 0.0), (0.0, _A_SI), (
            Column((0.0, 0.0), (_SI,), "Si"),
            Column((0.0, 0.25), (_SI,), "Si"),
            Column((0.5, 0.5), (_SI,), "Si"),
            Column((0.5, 0.75), (_SI,), "Si"),
        )),
        CrystalProjection("Au[001]", (_A_AU, 0.0), (0.0, _A_AU), (
            Column((0.0, 0.0), (_AU,), "Au"),
            Column((0.5, 0.5), (_AU,), "Au"),
            Column((0.5, 0.0), (_AU,), "Au"),
            Column((0.0, 0.5), (_AU,), "Au"),
        )),
        CrystalProjection("Au[110]", (_A_AU / math.sqrt(2), 0.0), (0.0, _A_AU), (
            Column((0.0, 0.0), (_AU,), "Au"),
            Column((0.5, 0.5), (_AU,), "Au"),
        )),
        CrystalProjection("graphene", *_hexagonal(_A_GRAPHENE), (
            Column((1 / 3, 1 / 3), (_C,), "C"),
            Column((2 / 3, 2 / 3), (_C,), "C"),
        )),
    )
}


def structure_sites(
    structure: CrystalProjection, pixel_size_pm: float, theta: float, shift: torch.Tensor,
    centre: torch.Tensor, radius_px: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The structure's columns within ``radius_px`` of ``centre`` (x, y px): positions ``(S, 2)``
    x, y px, rotated by ``theta`` (rad) and shifted by ``shift`` (fractions of the cell), and
    intensities ``(S,)`` (brightest column 1)."""
    rot = row_rotation(theta)
    cell = torch.tensor([structure.a1_pm, structure.a2_pm]) / pixel_size_pm @ rot  # (2, 2) px
    basis = structure.positions_pm() / pixel_size_pm @ rot  # (K, 2)
    a1, a2 = cell
    sin_gamma = abs(float(a1[0] * a2[1] - a1[1] * a2[0])) / float(a1.norm() * a2.norm())
    n = math.ceil(radius_px / (min(float(a1.norm()), float(a2.norm())) * sin_gamma)) + 1
    ij = torch.arange(-n, n + 1, dtype=torch.float32)
    ii, jj = torch.meshgrid(ij, ij, indexing="ij")
    origins = centre + (ii.reshape(-1, 1) + shift[0]) * a1 + (jj.reshape(-1, 1) + shift[1]) * a2
    sites = (origins.unsqueeze(1) + basis.unsqueeze(0)).reshape(-1, 2)
    weights = torch.tensor(structure.intensities()).repeat(origins.shape[0])
    near = (sites - centre).norm(dim=1) <= radius_px
    return sites[near], weights[near]


def structure_grains(
    config: StemConfig, seeds: torch.Tensor, used: torch.Tensor, size: tuple[int, int],
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Replace a share ``structure_fraction`` of the grains by real crystal projections.

    ``seeds`` ``(B, G, 2)`` (x, y px) and ``used`` ``(B, G)`` are the Voronoi grains of the random
    lattices. Each replaced grain gets a structure drawn from ``config.structures``, a random
    in-plane rotation and offset, its period from the lattice constant and ``pixel_size_pm``, and
    the random lattices' thickness jitter and vacancies (no dopants). Returns the columns
    ``(B, S, 2)`` x, y px, their intensities ``(B, S)`` (0 outside their grain, padding) and
    ``replaced`` ``(B, G)`` bool (the random lattice of these grains must be dropped)."""
    c = config
    batch, n_grain, _ = seeds.shape
    h, w = size
    assert c.pixel_size_pm is not None  # the config refuses structures without a pixel size
    replaced = (torch.rand(batch, n_grain, generator=generator) < c.structure_fraction) & used
    kind = torch.randint(len(c.structures), (batch, n_grain), generator=generator)
    theta = torch.rand(batch, n_grain, generator=generator) * 2 * math.pi
    shift = torch.rand(batch, n_grain, 2, generator=generator)
    vacancy_rate = c.vacancy_fraction_max * torch.rand(batch, n_grain, generator=generator)
    centre = torch.tensor([(w - 1) / 2, (h - 1) / 2])
    radius = math.hypot(h, w) / 2 + 2
    frames: list[tuple[torch.Tensor, torch.Tensor]] = []
    for b in range(batch):
        pts, wts = [torch.zeros(0, 2)], [torch.zeros(0)]
        for g in range(n_grain):
            if not replaced[b, g]:
                continue
            structure = STRUCTURES[c.structures[int(kind[b, g])]]
            sites, z = structure_sites(structure, c.pixel_size_pm, float(theta[b, g]),
                                       shift[b, g], centre, radius)
            n = sites.shape[0]
            z = z * (1 + THICKNESS_JITTER * torch.randn(n, generator=generator))
            z = z * (torch.rand(n, generator=generator) >= vacancy_rate[b, g])
            dist = torch.cdist(sites, seeds[b]).masked_fill(~used[b], float("inf"))
            own = dist.argmin(dim=1) == g  # the site is in this grain (nearest used seed)
            pts.append(sites[own])
            wts.append(z[own].clamp_min(0))
        frames.append((torch.cat(pts), torch.cat(wts)))
    points, weights = pad_columns(frames)
    return points, weights, replaced

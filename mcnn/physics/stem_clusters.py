"""Sub-nm clusters and single heavy atoms on an amorphous support, as HAADF STEM shows them.

The support (amorphous carbon by default) is many light atoms at uniformly random positions, a
density per nm^2 (a-C holds ~100 atoms/nm^3, so a 1-5 nm film projects 100-500 atoms/nm^2); each
has the Z-contrast weight ``(Z_support / Z_heavy) ** 1.7`` of a heavy atom (1/78 for C under Pt),
so the support is a speckled low background, far below any threshold that counts atoms.

A cluster is up to three close-packed layers (A, B, C stacking: fcc viewed down [111], atoms
``bond_pm`` apart) inside ``cluster_radius_pm``: in projection every atom is its own column,
``bond / sqrt(3)`` from its nearest neighbour. Atoms fill the lower layers and the middle first
(a dome), with random jitter in the order, so shapes vary. Single atoms sit alone. Clusters and
single atoms keep at least ``bond_pm`` between each other (drawn candidates that crowd are
skipped, so a crowded frame may show fewer than drawn).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mcnn.physics.config import StemConfig
from mcnn.physics.functional import pad_columns, row_rotation, uniform
from mcnn.physics.stem_structures import Z_EXPONENT

_CANDIDATES = 8  # candidate positions drawn per cluster or single atom (crowding rejections)


@dataclass
class ClusterScene:
    """``frames`` ``(B,)`` bool: frames showing clusters on a support (their crystal is dropped);
    heavy atoms ``heavy_points`` ``(B, S, 2)`` x, y px with ``heavy_weights`` ``(B, S)`` (1 per
    atom, 0 padding and in other frames); support atoms ``support_points`` ``(B, T, 2)`` with
    ``support_weights`` ``(B, T)``."""

    frames: torch.Tensor
    heavy_points: torch.Tensor
    heavy_weights: torch.Tensor
    support_points: torch.Tensor
    support_weights: torch.Tensor


def raft_sites(bond_px: float, radius_px: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Projected sites ``(N, 2)`` (x, y px, around 0) of three close-packed layers within
    ``radius_px`` and each site's layer ``(N,)`` (0, 1, 2 for A, B, C)."""
    a1 = torch.tensor([bond_px, 0.0])
    a2 = torch.tensor([bond_px / 2, bond_px * math.sqrt(3) / 2])
    n = math.ceil(radius_px / (bond_px * math.sqrt(3) / 2)) + 2
    ij = torch.arange(-n, n + 1, dtype=torch.float32)
    ii, jj = torch.meshgrid(ij, ij, indexing="ij")
    net = ii.reshape(-1, 1) * a1 + jj.reshape(-1, 1) * a2
    sites, layers = [], []
    for layer in range(3):
        s = net + layer * (a1 + a2) / 3
        s = s[s.norm(dim=1) <= radius_px]
        sites.append(s)
        layers.append(torch.full((s.shape[0],), layer))
    return torch.cat(sites), torch.cat(layers)


def _place(centres: torch.Tensor, radii: list[float], gap: float,
           taken: list[tuple[torch.Tensor, float]]) -> list[torch.Tensor]:
    """Accept candidate ``centres`` ``(K, 2)`` in order while they keep ``gap`` px clear of the
    objects in ``taken`` (centre, radius) and of each other; ``radii`` the objects to place."""
    out = []
    k = 0
    for r in radii:
        while k < centres.shape[0]:
            p = centres[k]
            k += 1
            if all(float((p - q).norm()) >= r + rq + gap for q, rq in taken):
                taken.append((p, r))
                out.append(p)
                break
    return out


def cluster_scene(
    config: StemConfig, batch: int, size: tuple[int, int], generator: torch.Generator
) -> ClusterScene:
    """Draw which frames show clusters on a support (``cluster_frame_fraction``) and what they
    show. Draws the same numbers for every frame whatever it shows."""
    c = config
    assert c.pixel_size_pm is not None  # the config refuses clusters without a pixel size
    h, w = size
    px = c.pixel_size_pm
    frames = torch.rand(batch, generator=generator) < c.cluster_frame_fraction
    # support: a density per nm^2 drawn per frame
    area_nm2 = h * w * (px / 1000) ** 2
    n_support = max(1, math.ceil(c.support_atoms_per_nm2_range[1] * area_nm2))
    density = uniform(batch, *c.support_atoms_per_nm2_range, generator)
    count = (density * area_nm2).round()
    support_points = torch.rand(batch, n_support, 2, generator=generator) * torch.tensor(
        [w, h], dtype=torch.float32) - 0.5
    light = (c.support_atom_z / c.cluster_atom_z) ** Z_EXPONENT
    support_weights = light * (torch.arange(n_support).view(1, -1) < count.view(-1, 1)).float()
    support_weights = support_weights * frames.view(-1, 1)
    # clusters and single atoms
    bond = c.cluster_bond_pm / px
    radius = c.cluster_radius_pm / px
    sites, layers = raft_sites(bond, radius)
    lo_c, hi_c = c.clusters_per_frame_range
    lo_s, hi_s = c.single_atoms_per_frame_range
    n_clusters = torch.randint(lo_c, hi_c + 1, (batch,), generator=generator)
    n_singles = torch.randint(lo_s, hi_s + 1, (batch,), generator=generator)
    n_atoms = torch.randint(c.cluster_atoms_range[0], c.cluster_atoms_range[1] + 1,
                            (batch, hi_c), generator=generator)
    theta = torch.rand(batch, hi_c, generator=generator) * 2 * math.pi
    jitter = torch.rand(batch, hi_c, sites.shape[0], generator=generator)
    span = torch.tensor([max(w - 1 - 2 * radius, 0.0), max(h - 1 - 2 * radius, 0.0)])
    cand_c = radius + torch.rand(batch, _CANDIDATES * hi_c, 2, generator=generator) * span
    cand_s = torch.rand(batch, _CANDIDATES * hi_s, 2, generator=generator) * torch.tensor(
        [w - 1.0, h - 1.0])
    # fill order: lower layers first, the middle first, jittered (a dome of varied shape)
    order_key = sites.norm(dim=1) + bond * (0.8 * layers + 1.5 * jitter)  # (B, hi_c, N)
    heavy: list[torch.Tensor] = []
    for b in range(batch):
        atoms = [torch.zeros(0, 2)]
        if frames[b]:
            taken: list[tuple[torch.Tensor, float]] = []
            centres = _place(cand_c[b], [radius] * int(n_clusters[b]), bond, taken)
            for k, centre in enumerate(centres):
                rot = row_rotation(float(theta[b, k]))
                pick = order_key[b, k].argsort()[: int(n_atoms[b, k])]
                atoms.append(centre + sites[pick] @ rot)
            singles = _place(cand_s[b], [0.0] * int(n_singles[b]), bond, taken)
            atoms += [p.view(1, 2) for p in singles]
        heavy.append(torch.cat(atoms))
    heavy_points, heavy_weights = pad_columns([(a, torch.ones(a.shape[0])) for a in heavy])
    return ClusterScene(frames, heavy_points, heavy_weights, support_points, support_weights)

"""Real crystal projections and clusters on a support in the STEM simulator, checked against known
numbers: lattice constants, Z^1.7 column contrast, atom counts, and frames unchanged when off."""

from __future__ import annotations

import math

import pydantic
import pytest
import torch

from mcnn.physics import ProceduralContent, StemAdfSimulator, StemConfig
from mcnn.physics.config import STEM_STRUCTURE_NAMES
from mcnn.physics.stem_clusters import raft_sites
from mcnn.physics.stem_structures import STRUCTURES

PX_PM = 20.0
SIGMA_PX = 1.5
QUIET = {  # noiseless, undistorted frames: peaks are the columns
    "pixel_size_pm": PX_PM, "atom_sigma_px_range": (SIGMA_PX, SIGMA_PX), "background_max": 0.0,
    "probe_tail_fraction": 0.0, "scan_jitter_px": 0.0, "drift_px_max": 0.0,
    "vacancy_fraction_max": 0.0, "dopant_fraction_max": 0.0,
}


def _frames(size: int = 96, batch: int = 2, seed: int = 0, **fields):
    sim = StemAdfSimulator(StemConfig(**{**QUIET, **fields}))
    return sim.clean_with_truth(batch, (size, size), torch.Generator().manual_seed(seed),
                                ProceduralContent(), 0.2)


def peaks(image: torch.Tensor, threshold: float, border: int = 3) -> tuple[torch.Tensor,
                                                                             torch.Tensor]:
    """Local maxima (5x5) of ``image`` ``(H, W)`` above ``threshold``, refined to sub-pixel by a
    parabola through the log of the 3 values along each axis (exact for a Gaussian). Returns
    positions ``(K, 2)`` (row, col) and heights ``(K,)``; none within ``border`` of the edge."""
    pooled = torch.nn.functional.max_pool2d(image[None, None], 5, 1, 2)[0, 0]
    is_peak = (image == pooled) & (image > threshold)
    is_peak[:border] = is_peak[-border:] = False
    is_peak[:, :border] = is_peak[:, -border:] = False
    r, c = is_peak.nonzero().unbind(1)
    logs = image.clamp_min(1e-9).log()

    def offset(m: torch.Tensor, z: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return 0.5 * (m - p) / (m - 2 * z + p).clamp(max=-1e-9)

    dr = offset(logs[r - 1, c], logs[r, c], logs[r + 1, c])
    dc = offset(logs[r, c - 1], logs[r, c], logs[r, c + 1])
    return torch.stack([r + dr, c + dc], 1), image[r, c]


def _nearest(a: torch.Tensor, b: torch.Tensor, same: bool = False) -> torch.Tensor:
    d = torch.cdist(a, b)
    if same:
        d.fill_diagonal_(float("inf"))
    return d.min(dim=1).values


def test_the_library_is_what_the_config_accepts():
    assert tuple(STRUCTURES) == STEM_STRUCTURE_NAMES


def test_column_contrast_is_z_to_the_1_7_and_the_geometry_is_the_textbook_one():
    sto = STRUCTURES["SrTiO3[001]"]
    assert sto.intensities() == pytest.approx([1, (22**1.7 + 8**1.7) / 38**1.7, (8 / 38) ** 1.7,
                                               (8 / 38) ** 1.7])
    mos2 = STRUCTURES["MoS2[001]"]
    assert mos2.intensities() == pytest.approx([1, 2 * 16**1.7 / 42**1.7])
    mo, s2 = mos2.positions_pm()
    assert float((mo - s2).norm()) == pytest.approx(316 / math.sqrt(3), abs=0.1)
    si = STRUCTURES["Si[110]"].positions_pm()
    assert float((si[1] - si[0]).norm()) == pytest.approx(543.1 / 4, abs=0.1)  # 135.8 pm
    c1, c2 = STRUCTURES["graphene"].positions_pm()
    assert float((c1 - c2).norm()) == pytest.approx(142.0, abs=0.1)
    au = STRUCTURES["Au[110]"]
    assert au.a1_pm[0] == pytest.approx(407.8 / math.sqrt(2))  # 288.4 pm: the Au-Au bond


def test_srtio3_frames_show_the_sr_period_and_the_z_contrast():
    truth = _frames(structures=["SrTiO3[001]"], structure_fraction=1.0, max_grains=1)
    ratios = []
    for i in range(2):
        image = truth.clean[i, 0]
        found, height = peaks(image, 0.15 * float(image.max()))
        true = truth.positions[i]
        # every detected peak is a true column (Sr or Ti-O), within 0.5 px
        assert float(_nearest(found, true).max()) < 0.5
        sr = truth.weights[i] > 0.6
        match = torch.cdist(true, found).argmin(dim=1)
        sr_found = found[match[sr]]
        spacing = _nearest(sr_found, sr_found, same=True).median()
        assert abs(float(spacing) - 390.5 / PX_PM) < 0.3
        ratios.append(float(height[match[~sr]].median() / height[match[sr]].median()))
    expected = (22**1.7 + 8**1.7) / 38**1.7  # 0.465
    assert all(abs(r / expected - 1) < 0.1 for r in ratios), ratios


def test_mos2_and_si_distances():
    mos2 = _frames(structures=["MoS2[001]"], structure_fraction=1.0, max_grains=1, seed=1)
    image = mos2.clean[0, 0]
    found, _ = peaks(image, 0.1 * float(image.max()))
    match = torch.cdist(mos2.positions[0], found).argmin(dim=1)
    mo = mos2.weights[0] > 0.6
    d = _nearest(found[match[mo]], found[match[~mo]]).median()
    assert abs(float(d) - 316 / math.sqrt(3) / PX_PM) < 0.3
    si = _frames(structures=["Si[110]"], structure_fraction=1.0, max_grains=1, seed=2)
    image = si.clean[0, 0]
    found, _ = peaks(image, 0.3 * float(image.max()))
    assert len(found) > 20
    assert abs(float(_nearest(found, found, same=True).median()) - 543.1 / 4 / PX_PM) < 0.3


def test_structures_replace_only_their_grains():
    # max_grains=1: a frame is all structure or all random lattice; the random ones are the
    # default frames bit for bit (the structure draws come last).
    content = ProceduralContent()
    cfg = StemConfig(max_grains=1, pixel_size_pm=20, structures=list(STEM_STRUCTURE_NAMES),
                     structure_fraction=0.5)
    mixed = StemAdfSimulator(cfg).clean_with_truth(8, (48, 48), torch.Generator().manual_seed(5),
                                                   content)
    one = StemAdfSimulator(cfg.model_copy(update={"structure_fraction": 0.0})).clean(
        8, (48, 48), torch.Generator().manual_seed(5), content)
    kept = [torch.equal(mixed.clean[i], one[i]) for i in range(8)]
    assert 0 < sum(kept) < 8  # some frames became structures, the others did not change
    for i in range(8):
        if not kept[i]:
            assert len(mixed.positions[i]) > 5


def test_options_off_draw_nothing():
    content = ProceduralContent()
    off = StemConfig(pixel_size_pm=20, structures=["Au[001]"], structure_fraction=0.0,
                     cluster_frame_fraction=0.0, clusters_per_frame_range=(2, 3))
    a = StemAdfSimulator(off).sample(3, (40, 40), torch.Generator().manual_seed(1), content)
    b = StemAdfSimulator(StemConfig()).sample(3, (40, 40), torch.Generator().manual_seed(1), content)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


CLUSTERS = {"cluster_frame_fraction": 1.0, "clusters_per_frame_range": (1, 2),
            "cluster_atoms_range": (3, 12), "single_atoms_per_frame_range": (2, 5),
            "support_atoms_per_nm2_range": (300.0, 300.0)}


def test_cluster_frames_show_each_heavy_atom_as_a_peak_and_a_faint_support():
    truth = _frames(size=128, batch=3, seed=3, **CLUSTERS)
    n_heavy, atoms = 0, []
    for i in range(3):
        image = truth.clean[i, 0]
        true = truth.positions[i]
        inner = ((true >= 4) & (true <= 123)).all(1)
        found, height = peaks(image, 0.4 * float(image.max()), border=4)
        assert len(found) == int(inner.sum())
        assert float(_nearest(true[inner], found).max()) < 0.5
        assert (truth.weights[i] == 1).all()  # single heavy atoms: all alike
        n_heavy += len(true)
        # The support's mean level far from heavy atoms, in units of one heavy atom (whose
        # integral is 2 pi sigma^2 at weight 1): density * pixel area * (6 / 78)^1.7 * 2 pi s^2.
        rr, cc = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
        grid = torch.stack([rr, cc], -1).view(-1, 2)
        to_heavy = torch.cdist(grid, true).view(128, 128, -1)
        level = float(image[to_heavy.min(dim=2).values > 5 * SIGMA_PX].mean())
        alone = (_nearest(true, true, same=True) > 6 * SIGMA_PX) & ((true > 7) & (true < 120)).all(1)
        for k in alone.nonzero().flatten().tolist():
            disk = to_heavy[..., k] <= 4 * SIGMA_PX
            atom = (float(image[disk].sum()) - level * int(disk.sum())) / (2 * math.pi * SIGMA_PX**2)
            atoms.append(level / atom)
    # 0.0217, + the 1e-3 floor of every frame
    expected = 300 * (PX_PM / 1000) ** 2 * (6 / 78) ** 1.7 * 2 * math.pi * SIGMA_PX**2 + 1e-3
    assert len(atoms) >= 3 and n_heavy > 10
    assert abs(sum(atoms) / len(atoms) / expected - 1) < 0.1, (atoms, expected)


def test_support_atoms_are_not_columns_and_crystal_frames_stay_the_same():
    cfg = StemConfig(pixel_size_pm=20, cluster_frame_fraction=0.5)
    content = ProceduralContent()
    truth = StemAdfSimulator(cfg).clean_with_truth(8, (64, 64), torch.Generator().manual_seed(4),
                                                   content, 0.05)
    plain = StemAdfSimulator(StemConfig()).clean(8, (64, 64), torch.Generator().manual_seed(4),
                                                 content)
    same = [torch.equal(truth.clean[i], plain[i]) for i in range(8)]
    assert 0 < sum(same) < 8
    for i in range(8):
        if not same[i]:  # a cluster frame: only heavy atoms (weight 1) are columns
            assert len(truth.positions[i]) > 0 and (truth.weights[i] == 1).all()


def test_raft_atoms_are_a_bond_over_root_3_apart_in_projection():
    sites, layers = raft_sites(277 / 20, 450 / 20)
    d = _nearest(sites, sites, same=True)
    assert float(d.min()) == pytest.approx(277 / 20 / math.sqrt(3), rel=1e-4)
    assert set(layers.tolist()) == {0, 1, 2} and len(sites) >= 25  # room for ~30 atoms


@pytest.mark.parametrize("fields, field", [
    ({"structures": ["NaCl[001]"]}, "structures"),
    ({"structures": ["Au[001]"], "structure_fraction": 0.5}, "structure_fraction"),
    ({"pixel_size_pm": 20, "structure_fraction": 0.5}, "structure_fraction"),
    ({"cluster_frame_fraction": 0.5}, "cluster_frame_fraction"),
    ({"pixel_size_pm": 20, "cluster_atoms_range": (5, 2)}, "cluster_atoms_range"),
    ({"support_atom_z": 80}, "support_atom_z"),
])
def test_bad_structure_and_cluster_fields_are_one_line_errors(fields, field):
    with pytest.raises(pydantic.ValidationError) as info:
        StemConfig(**fields)
    messages = [e["msg"] for e in info.value.errors()]
    assert len(messages) == 1 and "\n" not in messages[0]
    assert field in messages[0] or field in str(info.value.errors()[0]["loc"])

"""The comparison figure is README-ready: one colour scale and one colour bar (rad) per row, a
scale bar in µm on every map, the recorded plane beside the error maps, a small palette PNG."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from PIL import Image

from mcnn.phase.figures import nice_length_um, save_comparison

matplotlib.use("Agg")


@pytest.fixture
def figures(monkeypatch):
    """Keep the figures save_comparison closes, to inspect them."""
    import matplotlib.pyplot as plt

    kept = []
    monkeypatch.setattr(plt, "close", kept.append)
    return kept


def test_comparison_shares_one_scale_per_row_with_bars_in_rad_and_um(tmp_path, figures):
    rng = np.random.default_rng(0)
    truth = rng.normal(0, 0.5, (64, 64)).astype(np.float32)
    panels = {"fft_tie": truth + rng.normal(0, 0.1, truth.shape),
              "mcnn-2z": truth + rng.normal(0, 0.05, truth.shape) + 7.0}  # piston is ignored
    plane = 1 + 0.2 * rng.normal(size=truth.shape)
    path = save_comparison(panels, 0.5, tmp_path / "c.png", truth,
                           {"fft_tie": "-50, 0, +50 µm, 3 ms"}, ("recorded, z = -50 µm", plane))
    (fig,) = figures
    images = [ax.images[0] for ax in fig.axes if ax.images]
    phase, intensity, errors = images[:3], images[3], images[4:]
    assert len(errors) == 2
    assert len({im.get_clim() for im in phase}) == 1  # one phase scale: the truth's
    lo, hi = errors[0].get_clim()
    assert {im.get_clim() for im in errors} == {(lo, hi)} and lo == -hi
    labels = [ax.get_ylabel() for ax in fig.axes if not ax.images and ax.get_ylabel()]
    assert sorted(labels) == ["I / I₀", "error (rad)", "phase (rad)"]  # one bar per row
    titles = [ax.get_title() for ax in fig.axes]
    assert "FFT-TIE\n-50, 0, +50 µm, 3 ms" in titles  # display name + subtitle
    scale = f"{nice_length_um(64 * 0.5):g} µm"
    map_axes = [ax for ax in fig.axes if ax.images]
    assert all(any(t.get_text() == scale for t in ax.texts) for ax in map_axes)
    assert intensity.get_cmap().name == "gray"
    with Image.open(path) as png:
        assert png.mode == "P"  # palette: a README figure stays small
    assert path.stat().st_size < 300_000

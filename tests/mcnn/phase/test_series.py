"""Through-focus series come in from stacks, folders and HDF5 with their physics, corrected and
registered; a model refuses a series recorded with other physics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mcnn.data.image_io import PixelSize, write_image
from mcnn.phase.check import PhysicsMismatch, match_series_to_model
from mcnn.phase.series import PhaseSeries, load_series, read_manifest
from mcnn.physics import DefocusConfig, DefocusSeriesSimulator, ProceduralContent

PLANES = [-10.0, 0.0, 10.0]


def planes(n: int = 3, size: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (1.0 + 0.2 * rng.random((n, size, size))).astype(np.float32)


def training_data(**sim) -> dict:
    base = {"name": "defocus", "wavelength_um": 0.532, "pixel_size_um": 1.0,
            "defocus_um": [-10.0, 10.0]}
    return {"kind": "simulated", "simulator": {**base, **sim}}


def test_tiff_stack_with_pixel_size_and_a_manifest(tmp_path) -> None:
    x = planes()
    write_image(tmp_path / "s.tif", x[:, None], PixelSize(0.5, 0.5))
    (tmp_path / "m.yaml").write_text("wavelength_um: 0.633\ndefocus_um: [-10, 0, 10]\n")
    s = load_series(tmp_path / "s.tif", tmp_path / "m.yaml")
    assert (s.wavelength_um, s.pixel_size_um, s.defocus_um) == (0.633, 0.5, tuple(PLANES))
    np.testing.assert_allclose(s.intensities.mean(axis=(1, 2)), 1.0, rtol=1e-5)  # per plane
    np.testing.assert_allclose(s.intensities, x / x.mean(axis=(1, 2), keepdims=True), rtol=1e-5)
    # command-line values win over the manifest
    assert load_series(tmp_path / "s.tif", tmp_path / "m.yaml", pixel_size_um=0.7).pixel_size_um \
        == 0.7


def test_folder_and_hdf5_series_and_flat_field(tmp_path) -> None:
    import h5py

    x = planes()
    flat = np.linspace(0.5, 1.5, 24, dtype=np.float32)[None, :].repeat(24, 0)
    folder = tmp_path / "planes"
    for i, p in enumerate(x):
        write_image(folder / f"z{i}.tif", (p * flat)[None])
    write_image(tmp_path / "flat.tif", flat[None])
    s = load_series(folder, None, wavelength_um=0.5, pixel_size_um=1.0, defocus_um=PLANES,
                    flat_field=str(tmp_path / "flat.tif"), normalise="none")
    np.testing.assert_allclose(s.intensities, x, rtol=1e-5)
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f["data/series"] = x
    manifest = {"wavelength_um": 0.5, "pixel_size_um": 2.0, "defocus_um": PLANES}
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    h = load_series(tmp_path / "s.h5", tmp_path / "m.json")
    assert h.intensities.shape == (3, 24, 24) and h.pixel_size_um == 2.0


def test_manifest_and_series_errors_are_one_line_naming_the_field(tmp_path) -> None:
    (tmp_path / "m.yaml").write_text("wavelength_nm: 532\n")
    with pytest.raises(ValueError, match=r"m.yaml: wavelength_nm: unknown field"):
        read_manifest(tmp_path / "m.yaml")
    write_image(tmp_path / "s.tif", planes()[:, None])
    with pytest.raises(ValueError, match=r"s.tif: pixel_size_um unknown"):
        load_series(tmp_path / "s.tif", None, wavelength_um=0.5, defocus_um=PLANES)
    with pytest.raises(ValueError, match=r"3 planes but defocus_um has 2 values"):
        load_series(tmp_path / "s.tif", None, wavelength_um=0.5, defocus_um=[1, 2],
                    pixel_size_um=1)
    with pytest.raises(ValueError, match="repeats a distance"):
        load_series(tmp_path / "s.tif", None, wavelength_um=0.5, defocus_um=[1, 1, 2],
                    pixel_size_um=1)


def test_registration_undoes_the_simulated_misregistration(tmp_path) -> None:
    # a weak phase: a phase tilt would shift defocused planes too (by z * tilt), by physics
    sim = DefocusSeriesSimulator(DefocusConfig(defocus_um=[-4.0, 0.0, 4.0]))
    content = ProceduralContent()
    g = torch.Generator().manual_seed(3)
    phase = 0.2 * content.sample(1, (64, 64), g)
    amplitude = 1.0 - 0.5 * content.sample(1, (64, 64), g)
    shift = torch.tensor([[[1.3, -0.7], [0.0, 0.0], [-2.2, 1.6]]])
    x = sim(phase, amplitude, torch.tensor([[-4.0, 0.0, 4.0]]), shift)[0].numpy()
    write_image(tmp_path / "s.npy", x[:, None])
    s = load_series(tmp_path / "s.npy", None, wavelength_um=0.532, pixel_size_um=1.0,
                    defocus_um=[-4.0, 0.0, 4.0], register_planes=True, normalise="none")
    found = np.array(s.meta["registration_shifts_px"])
    np.testing.assert_allclose(found, -shift[0].numpy(), atol=0.25)


def series(**kw) -> PhaseSeries:
    values = {"intensities": planes(), "defocus_um": (-10.0, 0.0, 10.0), "wavelength_um": 0.532,
              "pixel_size_um": 1.0, "source": "s.tif"}
    return PhaseSeries(**{**values, **kw})


def test_matching_physics_picks_the_model_planes_in_its_order() -> None:
    s = series(defocus_um=(10.0, 0.0, -10.05))
    ready, problems = match_series_to_model(s, training_data())
    assert ready.defocus_um == (-10.05, 10.0) and not problems
    np.testing.assert_array_equal(ready.intensities, s.intensities[[2, 0]])


@pytest.mark.parametrize("change, phrase", [
    ({"wavelength_um": 0.633}, r"wavelength_um 0.633 \(model 0.532, \+19.0%\)"),
    ({"pixel_size_um": 1.1}, r"pixel_size_um 1.1 \(model 1, \+10.0%\)"),
    ({"defocus_um": (-11.0, 0.0, 11.0)}, r"defocus_um \[-11.0, 0.0, 11.0\]"),
])
def test_mismatched_physics_is_refused_in_one_line_unless_allowed(change, phrase) -> None:
    s = series(**change)
    with pytest.raises(PhysicsMismatch, match=phrase) as info:
        match_series_to_model(s, training_data())
    assert "\n" not in str(info.value) and "--allow-mismatch" in str(info.value)
    ready, problems = match_series_to_model(s, training_data(), allow_mismatch=True)
    assert len(problems) == 1 and len(ready.defocus_um) == 2


def test_resampling_fixes_a_pixel_size_mismatch() -> None:
    s = series(pixel_size_um=0.5, intensities=planes(size=40))
    ready, problems = match_series_to_model(s, training_data(), resample=True)
    assert not problems and ready.pixel_size_um == 1.0 and ready.shape == (20, 20)


def test_a_model_without_recorded_physics_is_refused() -> None:
    with pytest.raises(PhysicsMismatch, match="does not record"):
        match_series_to_model(series(), {"kind": "folder"})


def _fresnel_series(wavelength_um: float, pixel_size_um: float, z_um: float) -> np.ndarray:
    """The same object array (one pixel grid) propagated with the paraxial propagator."""
    cfg = DefocusConfig(defocus_um=[-z_um, z_um], wavelength_um=wavelength_um,
                        pixel_size_um=pixel_size_um, propagator="fresnel", phase_max_rad=2.0,
                        pad_fraction=1.0)
    g = torch.Generator().manual_seed(4)
    phase = ProceduralContent().sample(1, (32, 32), g, channels=1) * 2.0
    sim = DefocusSeriesSimulator(cfg)
    return sim(phase, torch.ones_like(phase), torch.tensor([[-z_um, z_um]]))[0].numpy()


@pytest.mark.parametrize("wavelength_um, pixel_size_um, z_um", [
    (0.532, 2.0, 80.0),   # pixels 2x, distances 4x: the same pattern, pixel reinterpreted
    (0.266, 1.0, 40.0),   # half the wavelength, twice the distance: the same reduced distance
    (0.532, 1.5, 45.0),   # 1.5x pixels, 2.25x distances
])
def test_fresnel_scaling_resamples_wavelength_and_distance_mismatches(wavelength_um,
                                                                      pixel_size_um, z_um):
    model_view = _fresnel_series(0.532, 1.0, 20.0)
    recorded = _fresnel_series(wavelength_um, pixel_size_um, z_um)
    # the law itself, on the simulator: the same object array gives the same intensities
    np.testing.assert_allclose(recorded, model_view, atol=2e-3)
    s = PhaseSeries(recorded, (-z_um, z_um), wavelength_um, pixel_size_um)
    model = training_data(defocus_um=[-20.0, 20.0])
    with pytest.raises(PhysicsMismatch, match="Fresnel scaling"):
        match_series_to_model(s, model)
    ready, problems = match_series_to_model(s, model, resample=True)
    assert not problems
    assert ready.defocus_um == (-20.0, 20.0) and ready.wavelength_um == 0.532
    assert ready.pixel_size_um == pytest.approx(1.0) and ready.shape == (32, 32)
    np.testing.assert_allclose(ready.intensities, model_view, atol=2e-3)


def test_fresnel_scaling_needs_one_common_ratio_for_all_planes():
    s = PhaseSeries(planes(n=2, size=24), (-20.0, 30.0), 0.532, 1.0)  # no one ratio to +-10
    with pytest.raises(PhysicsMismatch, match="defocus_um"):
        match_series_to_model(s, training_data(), resample=True)

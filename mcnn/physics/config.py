"""Validated configs of every simulator and content source; no implementation is imported here.

Pure pydantic: a training config (``mcnn.data.config``) can name a simulator and its content without
loading torch code. ``mcnn.physics.build`` turns these configs into objects. Simulators are picked by
``name`` (``SimulatorConfig``), content sources by ``kind`` (``ContentConfig``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# skimage.data images that ship inside the scikit-image wheel (no network needed). "horse",
# "binary_blobs" and friends are left out: binary masks are poor natural-image content.
BUNDLED_NAMES = (
    "astronaut",
    "brick",
    "camera",
    "cell",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
)

# Zone-axis projections of real crystals that the STEM simulator knows (mcnn.physics.stem_structures
# holds their geometry; kept here so that a config validates without loading torch code).
STEM_STRUCTURE_NAMES = ("SrTiO3[001]", "MoS2[001]", "Si[110]", "Au[001]", "Au[110]", "graphene")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# -- simulators -----------------------------------------------------------------------------------


class LaplacianConfig(_Strict):
    """Laplacian tutorial: input = 9-point Laplacian of the phase + noise, target = phase."""

    name: Literal["laplacian"] = "laplacian"
    phase_scale: float = Field(
        default=1.0, gt=0, le=100, description="Phase = content (in [0, 1]) * phase_scale, radians."
    )
    noise_std: float = Field(
        default=0.01, ge=0, le=10, description="Std of the Gaussian noise added to the Laplacian."
    )



class PlaneSpacingConfig(_Strict):
    """Defocus planes made from a rule instead of a list: ``count`` distances from ``min_um`` to
    ``max_um``, linear (equal steps) or geometric (each step ``(max/min)**(1/(n-1))`` times the
    last, as in exponentially spaced TIE series); ``symmetric`` mirrors them to -z (2 * count)."""

    kind: Literal["linear", "geometric"] = "linear"
    count: int = Field(default=2, ge=1, le=16, description="Planes per side.")
    min_um: float = Field(default=10.0, description="Smallest distance, um.")
    max_um: float = Field(default=40.0, description="Largest distance, um.")
    symmetric: bool = Field(default=True, description="Also the mirrored planes at -z.")

    @model_validator(mode="after")
    def _valid_range(self) -> PlaneSpacingConfig:
        if self.max_um < self.min_um:
            raise ValueError(f"max_um ({self.max_um}) must be >= min_um ({self.min_um})")
        if self.kind == "geometric" and self.min_um <= 0:
            raise ValueError(f"geometric spacing needs min_um > 0, got {self.min_um}")
        if self.symmetric and 2 * self.count > 16:
            raise ValueError(f"symmetric count {self.count} gives {2 * self.count} planes; max 16")
        return self

    def distances_um(self) -> list[float]:
        """The planes, sorted from most negative to most positive."""
        n, lo, hi = self.count, self.min_um, self.max_um
        if n == 1:
            z = [hi]
        elif self.kind == "linear":
            z = [lo + (hi - lo) * k / (n - 1) for k in range(n)]
        else:
            z = [lo * (hi / lo) ** (k / (n - 1)) for k in range(n)]
        if self.symmetric:
            z = [-v for v in reversed(z)] + z
        return [round(v, 6) for v in z]


class DefocusConfig(_Strict):
    """Defocus-series phase retrieval: inputs = N intensities, targets = phase (+ amplitude).

    Units: wavelength (in vacuum), pixel pitch (at the sample) and distances in micrometres;
    the wave travels in a medium of index ``medium_index`` (wavelength there = wavelength / n).
    Padding: each side is padded by at least the diffraction spread of the largest distance,
    ``|z|max * tan(theta)`` with ``sin(theta) = min(wavelength / (2 pixel), NA) / n`` (the angle
    of the highest frequency on the grid, or of the pupil), so light never wraps around the FFT
    grid into the field of view (``mcnn.physics.defocus.diffraction_pad_px``).
    """

    name: Literal["defocus"] = "defocus"
    defocus_um: list[float] = Field(
        default=[-25.0, 0.0, 25.0],
        min_length=1,
        max_length=16,
        description="Nominal propagation distances, micrometres (one input channel each).",
    )
    planes: PlaneSpacingConfig | None = Field(
        default=None,
        description="Make defocus_um from a linear/geometric rule instead (leave defocus_um unset).",
    )
    wavelength_um: float = Field(default=0.532, gt=0.001, le=20, description="Wavelength, um.")
    pixel_size_um: float = Field(default=1.0, gt=0.001, le=1000, description="Pixel pitch, um.")
    medium_index: float = Field(
        default=1.0, ge=1.0, le=4.0, description="Refractive index n of the medium (water 1.33)."
    )
    propagator: Literal["angular_spectrum", "fresnel"] = Field(
        default="angular_spectrum",
        description="angular_spectrum: exact scalar; fresnel: paraxial transfer function.",
    )
    band_limited: bool = Field(
        default=False,
        description="Band-limit the angular spectrum for long distances (Matsushima & Shimobaba).",
    )
    numerical_aperture: float | None = Field(
        default=None, gt=0, le=4.0, description="Imaging NA: frequencies above NA/wavelength cut."
    )
    illumination_na: float = Field(
        default=0.0, ge=0, le=1.0,
        description="Partial spatial coherence: NA of a uniform disc source (0: coherent).",
    )
    bandwidth_um: float = Field(
        default=0.0, ge=0, le=1.0,
        description="Partial temporal coherence: spectral FWHM, um (0: monochromatic).",
    )
    phase_max_rad: float = Field(
        default=math.pi, gt=0, le=100, description="Phase = content (in [0, 1]) * this, radians."
    )
    amplitude_contrast: float = Field(
        default=0.0, ge=0, le=1, description="Amplitude = 1 - contrast * content; 0: pure phase."
    )
    predict_amplitude: bool = Field(default=False, description="Add amplitude as target channel 2.")
    zero_mean_phase: bool = Field(
        default=True, description="Subtract each target's mean phase (intensities cannot see it)."
    )
    photons_per_px: float | None = Field(
        default=None,
        gt=0,
        le=1e9,
        description="Mean photons per px at intensity 1; None: no shot noise.",
    )
    read_noise_std: float = Field(
        default=0.0, ge=0, le=10, description="Gaussian read noise, in intensity units."
    )
    focus_offset_um: float = Field(
        default=0.0, ge=0, le=1e4, description="Common focus error, +/- um."
    )
    defocus_jitter_um: float = Field(
        default=0.0, ge=0, le=1e4, description="Per-plane jitter, +/- um."
    )
    plane_shift_px: float = Field(
        default=0.0, ge=0, le=16, description="Lateral misregistration of each plane, +/- px."
    )
    pad_fraction: float = Field(
        default=0.25, ge=0, le=4, description="Padding per side, fraction of the size (at least)."
    )
    pad_mode: Literal["reflect", "edge", "zero"] = Field(
        default="reflect",
        description="Field outside the frame: reflect (scene continues), edge, zero (aperture).",
    )
    auto_pad: bool = Field(
        default=True, description="Pad at least the diffraction spread of the largest distance."
    )

    @model_validator(mode="before")
    @classmethod
    def _planes_from_rule(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("planes") is not None:
            rule = PlaneSpacingConfig.model_validate(data["planes"])
            made = rule.distances_um()
            given = data.get("defocus_um")
            if given is not None and [float(v) for v in given] != made:
                raise ValueError(
                    f"defocus_um {list(given)} and planes (which give {made}) disagree; "
                    "set only one"
                )
            data = {**data, "defocus_um": made}
        return data

    @model_validator(mode="after")
    def _sampled_finely_enough(self) -> DefocusConfig:
        half = self.wavelength_um / (2 * self.medium_index)
        if self.pixel_size_um < half:
            raise ValueError(
                f"pixel_size_um ({self.pixel_size_um}) must be >= wavelength_um / 2 "
                f"({half:g}, in a medium of index {self.medium_index}) for scalar "
                "angular-spectrum propagation"
            )
        if self.numerical_aperture is not None and self.numerical_aperture > self.medium_index:
            raise ValueError(
                f"numerical_aperture ({self.numerical_aperture}) must be <= medium_index "
                f"({self.medium_index})"
            )
        if self.illumination_na > self.medium_index:
            raise ValueError(
                f"illumination_na ({self.illumination_na}) must be <= medium_index "
                f"({self.medium_index})"
            )
        return self


class StemConfig(_Strict):
    """Low-dose HAADF STEM denoising: input = counts / dose, target = clean image (mean 1).

    Lengths can be physical: with ``pixel_size_pm`` set, ``spacing_pm_range`` and
    ``atom_sigma_pm_range`` (when given) replace the ``_px`` ranges, converted with the pixel size,
    so one config trains for a user's microscope (``--set data.simulator.pixel_size_pm=10``). The
    pixel size is stored with the checkpoint; ``stem-denoise`` warns when a frame's differs.
    Input SNR (``mcnn.physics.stem.snr_db``) is ``10 log10(E[clean^2] / E[(input - clean)^2])``,
    about ``10 log10(1.5 * dose)``: doses 1-10 e/px give +1.7 to +11.7 dB; the paper's +5 to -12 dB
    needs about 0.04-2.2 e/px (``configs/denoise-stem-lowdose.yaml``).
    """

    name: Literal["stem"] = "stem"
    dose_e_per_px_range: tuple[float, float] = Field(
        default=(1.0, 10.0), description="Electron dose per pixel, drawn log-uniformly per example."
    )
    pixel_size_pm: float | None = Field(
        default=None, gt=0, le=1e5,
        description="Pixel size the frames represent, pm; enables the _pm ranges.",
    )
    spacing_px_range: tuple[float, float] = Field(
        default=(6.0, 14.0), description="Nearest-neighbour column spacing, px."
    )
    spacing_pm_range: tuple[float, float] | None = Field(
        default=None, description="Column spacing, pm (needs pixel_size_pm; replaces the px range)."
    )
    atom_sigma_px_range: tuple[float, float] = Field(
        default=(0.8, 2.0), description="Gaussian sigma of an atom column seen by the probe, px."
    )
    atom_sigma_pm_range: tuple[float, float] | None = Field(
        default=None, description="Probe-blurred column sigma, pm (needs pixel_size_pm)."
    )
    vacancy_fraction_max: float = Field(default=0.05, ge=0, le=0.5, description="Empty columns.")
    dopant_fraction_max: float = Field(default=0.02, ge=0, le=0.5, description="Heavier columns.")
    max_grains: int = Field(default=3, ge=1, le=8, description="Voronoi grains per image, at most.")
    background_max: float = Field(
        default=0.3,
        ge=0,
        le=2,
        description="Amorphous background, relative to the brightest column.",
    )
    probe_tail_fraction: float = Field(
        default=0.05, ge=0, le=0.5, description="Share of the probe in broad tails (4x sigma)."
    )
    scan_jitter_px: float = Field(default=0.3, ge=0, le=5, description="Row-to-row jitter std, px.")
    drift_px_max: float = Field(default=2.0, ge=0, le=50, description="Drift over a frame, px.")
    detector_noise_e: float = Field(
        default=0.0, ge=0, le=100, description="Gaussian detector noise std, electrons per px."
    )
    row_offset_e: float = Field(
        default=0.0, ge=0, le=100,
        description="Std of a per-row offset (scan-line flicker), electrons per px.",
    )
    hot_pixel_fraction: float = Field(
        default=0.0, ge=0, le=0.05, description="Pixels stuck bright (5-20x the dose), per frame."
    )
    dead_pixel_fraction: float = Field(
        default=0.0, ge=0, le=0.05, description="Pixels that count nothing, per frame."
    )
    noise_correlation_px: float = Field(
        default=0.0, ge=0, le=20,
        description="Correlation length L of the Gaussian detector noise along the scan rows, px: "
        "its autocorrelation is exp(-lag^2 / (2 L^2)) along a row and 0 across rows (0: white).",
    )
    scan_afterglow: float = Field(
        default=0.0, ge=0, lt=1,
        description="Share of a pixel's counts that the detector carries into the next pixel "
        "along the row (IIR: y[j] = (1 - a) x[j] + a y[j-1]; lag-1 noise correlation a).",
    )
    scan_afterglow_range: tuple[float, float] | None = Field(
        default=None,
        description="Draw each frame's afterglow uniformly from [low, high] instead of using "
        "scan_afterglow: detectors and dwell times differ, and real HAADF frames show lag-1 "
        "noise correlations of 0.3-0.5 along the rows.",
    )
    vacuum_probability: float = Field(
        default=0.0, ge=0, le=1, description="Share of crystal frames with a vacuum region."
    )
    vacuum_fraction_range: tuple[float, float] = Field(
        default=(0.1, 0.5),
        description="Share of such a frame beyond the crystal edge (soft, ~ atom sigma wide).",
    )
    vacuum_particle_fraction: float = Field(
        default=0.0, ge=0, le=1,
        description="Share of vacuum frames showing a blob-shaped particle in vacuum instead of "
        "a half-plane edge.",
    )
    vacuum_edge_roughness_px: float = Field(
        default=0.0, ge=0, le=100,
        description="Largest amplitude of the edge's smooth random wobble, px (0: straight).",
    )
    natural_image_fraction: float = Field(
        default=0.0, ge=0, le=1,
        description="Share of frames whose target is a content image scaled to mean 1 instead of "
        "a crystal (the paper's stage 1: natural images at the same dose).",
    )
    structures: list[str] = Field(
        default=[],
        description=f"Zone-axis projections of real crystals for structure_fraction of the grains, "
        f"from {list(STEM_STRUCTURE_NAMES)}.",
    )
    structure_fraction: float = Field(
        default=0.0, ge=0, le=1,
        description="Share of the grains showing one of `structures` (random in-plane rotation and "
        "offset, period from its lattice constant; needs pixel_size_pm) instead of a random lattice.",
    )
    cluster_frame_fraction: float = Field(
        default=0.0, ge=0, le=1,
        description="Share of frames showing sub-nm clusters and single heavy atoms on an amorphous "
        "support instead of a crystal (needs pixel_size_pm).",
    )
    clusters_per_frame_range: tuple[int, int] = Field(
        default=(1, 4), description="Clusters per cluster frame, drawn uniformly (whole numbers)."
    )
    cluster_atoms_range: tuple[int, int] = Field(
        default=(3, 30),
        description="Atoms per cluster, at most what fits three close-packed layers in the radius.",
    )
    cluster_radius_pm: float = Field(
        default=450.0, gt=0, le=2000, description="Largest distance of a cluster atom from its centre."
    )
    cluster_bond_pm: float = Field(
        default=277.0, ge=100, le=500,
        description="Nearest-neighbour distance of the heavy atoms (Pt 277 pm, Au 288 pm).",
    )
    single_atoms_per_frame_range: tuple[int, int] = Field(
        default=(2, 15), description="Isolated heavy atoms per cluster frame, drawn uniformly."
    )
    cluster_atom_z: int = Field(default=78, ge=2, le=100, description="Heavy atoms' Z (Pt: 78).")
    support_atom_z: int = Field(default=6, ge=1, le=100, description="Support atoms' Z (C: 6).")
    support_atoms_per_nm2_range: tuple[float, float] = Field(
        default=(100.0, 500.0),
        description="Projected support atoms per nm^2, drawn uniformly per frame (a-C: ~100 per "
        "nm^3, so a 1-5 nm film).",
    )

    def px_ranges(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """(spacing, atom sigma) ranges in px, from the pm ranges when a pixel size is set."""
        spacing, sigma = self.spacing_px_range, self.atom_sigma_px_range
        if self.pixel_size_pm is not None:
            p = self.pixel_size_pm
            if self.spacing_pm_range is not None:
                spacing = (self.spacing_pm_range[0] / p, self.spacing_pm_range[1] / p)
            if self.atom_sigma_pm_range is not None:
                sigma = (self.atom_sigma_pm_range[0] / p, self.atom_sigma_pm_range[1] / p)
        return spacing, sigma

    @model_validator(mode="after")
    def _ordered_ranges(self) -> StemConfig:
        for name in ("dose_e_per_px_range", "spacing_px_range", "atom_sigma_px_range",
                     "spacing_pm_range", "atom_sigma_pm_range"):
            value = getattr(self, name)
            if value is None:
                continue
            lo, hi = value
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must satisfy 0 < low <= high, got ({lo}, {hi})")
            if name.endswith("_pm_range") and self.pixel_size_pm is None:
                raise ValueError(f"{name} ({lo}, {hi}) needs pixel_size_pm to convert it to px")
        spacing, sigma = self.px_ranges()
        if not (spacing[0] >= 1.5 and spacing[1] <= 512):
            raise ValueError(f"spacing of {spacing[0]:.3g}-{spacing[1]:.3g} px (spacing_pm_range "
                             f"/ pixel_size_pm={self.pixel_size_pm}) must be within 1.5-512 px")
        if not (sigma[0] >= 0.2 and sigma[1] <= 64):
            raise ValueError(f"atom sigma of {sigma[0]:.3g}-{sigma[1]:.3g} px (atom_sigma_pm_range "
                             f"/ pixel_size_pm={self.pixel_size_pm}) must be within 0.2-64 px")
        if self.scan_afterglow_range is not None:
            lo, hi = self.scan_afterglow_range
            if not 0 <= lo <= hi < 1:
                raise ValueError(
                    f"scan_afterglow_range must satisfy 0 <= low <= high < 1, got ({lo}, {hi})")
        lo, hi = self.vacuum_fraction_range
        if not 0 < lo <= hi < 1:
            raise ValueError(
                f"vacuum_fraction_range must satisfy 0 < low <= high < 1, got ({lo}, {hi})")
        self._check_structures_and_clusters()
        return self

    @field_validator("structures")
    @classmethod
    def _known_structures(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if n not in STEM_STRUCTURE_NAMES]
        if unknown:
            raise ValueError(f"unknown structures {unknown}; choose from {list(STEM_STRUCTURE_NAMES)}")
        return names

    def _check_structures_and_clusters(self) -> None:
        """Real structures and clusters have lengths in pm: they need a pixel size (<= 100 pm, so
        that the smallest cell, graphene's 246 pm, is over 2 px)."""
        for name in ("structure_fraction", "cluster_frame_fraction"):
            value = getattr(self, name)
            if value > 0 and (self.pixel_size_pm is None or self.pixel_size_pm > 100):
                raise ValueError(f"{name}={value} needs pixel_size_pm <= 100 (lengths in pm), "
                                 f"got pixel_size_pm={self.pixel_size_pm}")
        if self.structure_fraction > 0 and not self.structures:
            raise ValueError(f"structure_fraction={self.structure_fraction} needs structures: "
                             f"some of {list(STEM_STRUCTURE_NAMES)}")
        for name, low in (("clusters_per_frame_range", 0), ("cluster_atoms_range", 1),
                          ("single_atoms_per_frame_range", 0),
                          ("support_atoms_per_nm2_range", 0)):
            lo, hi = getattr(self, name)
            top = 5000 if name == "support_atoms_per_nm2_range" else 100
            if not low <= lo <= hi <= top:
                raise ValueError(f"{name} must satisfy {low} <= low <= high <= {top}, "
                                 f"got ({lo}, {hi})")
        if self.support_atom_z >= self.cluster_atom_z:
            raise ValueError(f"support_atom_z={self.support_atom_z} must be below cluster_atom_z="
                             f"{self.cluster_atom_z} (a light support under heavy atoms)")



class ScreenRigConfig(_Strict):
    """Hidden-screen rig: input = camera view of the door (H, W), target = screen (H*s, W*s)."""

    name: Literal["screen_rig"] = "screen_rig"
    scale: int = Field(default=2, ge=1, le=8, description="Screen size / camera size.")
    rig_seed: int = Field(default=0, ge=0, description="Seed of the fixed rig (albedo, transport).")
    blur_px: float = Field(
        default=12.0, gt=0, le=256, description="Transport blur sigma, camera px."
    )
    noise_std: float = Field(
        default=0.01, ge=0, le=0.5, description="Read noise, full-scale units."
    )
    photons_full_scale: float | None = Field(
        default=2000.0, gt=0, le=1e7, description="Photons at signal 1 (shot noise); None: none."
    )
    mirror: bool = True
    global_mix: float = Field(default=0.15, ge=0, le=1, description="Share of diffuse room bounce.")
    albedo_contrast: float = Field(default=0.3, ge=0, le=1)
    vignetting: float = Field(default=0.4, ge=0, le=1, description="Falloff at the corners.")
    crosstalk: float = Field(default=0.1, ge=0, le=1, description="Sensor colour cross-talk.")
    ambient: float = Field(default=0.05, ge=0, le=1, description="Ambient light, full-scale units.")
    gamma: float = Field(default=2.2, ge=1, le=3)
    warp: float = Field(default=0.05, ge=0, le=0.3, description="Corner shift, half-widths.")
    exposure_range: tuple[float, float] = Field(
        default=(0.7, 1.3), description="Per-example exposure gain drawn log-uniformly."
    )
    transport: Literal["easy", "realistic"] = Field(
        default="easy",
        description="easy: Gaussian blurs of the screen; realistic: an sRGB area light lighting a "
        "Lambertian door (cosine and inverse-square weights over the whole screen).",
    )
    distance_m: float = Field(default=0.5, gt=0, le=20, description="realistic: screen-door distance.")
    door_angle_deg: float = Field(default=0.0, ge=-80, le=80, description="realistic: door tilt.")
    occluder_x_m: float | None = Field(
        default=None, description="realistic: an occluder edge at this x (m) casts a penumbra."
    )
    door_gain: float = Field(default=3.0, gt=0, le=100, description="realistic: exposure scale.")

    @model_validator(mode="after")
    def _ordered_exposures(self) -> ScreenRigConfig:
        lo, hi = self.exposure_range
        if not 0 < lo <= hi <= 100:
            raise ValueError(f"exposure_range must satisfy 0 < low <= high <= 100, got {(lo, hi)}")
        return self


SimulatorConfig = Annotated[
    LaplacianConfig | DefocusConfig | StemConfig | ScreenRigConfig,
    Field(discriminator="name"),
]


# -- content --------------------------------------------------------------------------------------


class _ViewConfig(_Strict):
    """Random view augmentation shared by the image sources, and their train/validation split.

    The images themselves are split (by a stable hash of each name or relative path, so adding
    files never moves an image between the sets): validation views come only from images that
    training never sees.
    """

    scale_range: tuple[float, float] = Field(
        default=(0.5, 2.0), description="Zoom, output px per image px, drawn log-uniformly."
    )
    rotate: bool = Field(default=True, description="Rotate by a random angle.")
    flip: bool = Field(default=True, description="Mirror half of the views.")
    val_fraction: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="Share of the images held out for validation (at least one image).",
    )

    @model_validator(mode="after")
    def _ordered_scales(self) -> _ViewConfig:
        lo, hi = self.scale_range
        if not 0.05 <= lo <= hi <= 20:
            raise ValueError(
                f"scale_range must satisfy 0.05 <= low <= high <= 20, got ({lo}, {hi})"
            )
        return self


class ProceduralContentConfig(_Strict):
    """Smooth 1/f^beta fields, soft-edged shapes and textures, mixed per sample."""

    kind: Literal["procedural"] = "procedural"
    field_weight: float = Field(default=1.0, ge=0, le=100)
    shapes_weight: float = Field(default=1.0, ge=0, le=100)
    texture_weight: float = Field(default=0.5, ge=0, le=100)
    beta_range: tuple[float, float] = Field(
        default=(2.0, 4.0), description="Spectral slope of the fields (power ~ 1/f^beta)."
    )
    max_shapes: int = Field(default=12, ge=1, le=64, description="Shapes per image, at most.")

    @model_validator(mode="after")
    def _valid_mix(self) -> ProceduralContentConfig:
        weights = (self.field_weight, self.shapes_weight, self.texture_weight)
        if sum(weights) <= 0:
            raise ValueError("field_weight, shapes_weight and texture_weight are all 0")
        lo, hi = self.beta_range
        if not 0 <= lo <= hi <= 6:
            raise ValueError(f"beta_range must satisfy 0 <= low <= high <= 6, got ({lo}, {hi})")
        return self


class BundledContentConfig(_ViewConfig):
    """Random views of the images shipped with scikit-image."""

    kind: Literal["bundled"] = "bundled"
    names: list[str] | None = Field(
        default=None,
        description=f"Subset of {list(BUNDLED_NAMES)}, at least 2 (one is held out for "
        "validation); None uses all.",
    )

    @field_validator("names")
    @classmethod
    def _known_names(cls, names: list[str] | None) -> list[str] | None:
        if names is not None:
            unknown = sorted(set(names) - set(BUNDLED_NAMES))
            if unknown or not names:
                raise ValueError(
                    f"unknown bundled images {unknown}; choose from {list(BUNDLED_NAMES)}"
                )
            if len(set(names)) < 2:
                raise ValueError(
                    f"names {names}: give at least 2 images, so that validation views come "
                    "from an image training never sees"
                )
        return names


class FolderContentConfig(_ViewConfig):
    """Random views of a folder of images (searched recursively by default)."""

    kind: Literal["folder"] = "folder"
    path: Path = Field(
        description="Folder of at least 2 images (PNG/JPEG/TIFF/BMP/WebP/NPY), any size."
    )
    recursive: bool = True
    cache_mb: float = Field(
        default=1024.0, ge=0, le=1e6, description="Decoded-image cache per worker, megabytes."
    )


ContentConfig = Annotated[
    ProceduralContentConfig | BundledContentConfig | FolderContentConfig,
    Field(discriminator="kind"),
]


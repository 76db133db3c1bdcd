"""A recorded through-focus series and the physics needed to read it: ``PhaseSeries``.

Sources: a TIFF/NPY stack (planes = frames), a folder of single images (one per plane, sorted by
name unless the manifest lists them), or an HDF5 file (a ``(N, H, W)`` dataset). The physics comes
from a small manifest (YAML/JSON, ``SeriesManifest``) and/or explicit values (command line), which
win over the manifest; the pixel size may also come from the file (TIFF resolution tags).

Corrections, in this order: dark subtraction and flat-field division by reference images (one
image for all planes or one per plane), per-plane normalisation to mean 1 (exposure drift; the
simulator's intensities have mean about 1), and optional sub-pixel registration of each plane to
its neighbour nearer focus (phase correlation, ``skimage.registration``).

Arrays: ``intensities`` ``(N, H, W)`` float32; distances in um, ordered as the planes are.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

logger = logging.getLogger(__name__)

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")


class SeriesManifest(BaseModel):
    """What a through-focus series cannot say itself. Paths are relative to the manifest file."""

    model_config = ConfigDict(extra="forbid")

    wavelength_um: float | None = Field(default=None, gt=0.001, le=20,
                                        description="Wavelength in vacuum, um.")
    pixel_size_um: float | None = Field(
        default=None, gt=0.0001, le=1000,
        description="Pixel pitch at the sample, um; None: from the file (TIFF tags).")
    defocus_um: list[float] | None = Field(
        default=None, min_length=1, max_length=256,
        description="Distance of each plane from focus, um, in file order (+: away from the "
        "object, along the light).")
    medium_index: float = Field(default=1.0, ge=1.0, le=4.0, description="Refractive index.")
    files: list[str] | None = Field(
        default=None, description="Folder series: the image files in plane order.")
    dataset: str | None = Field(default=None, description="HDF5: path of the (N, H, W) dataset.")
    flat_field: str | None = Field(default=None, description="Reference image(s) without object.")
    dark: str | None = Field(default=None, description="Dark image(s), subtracted first.")
    normalise: Literal["per_plane", "series", "none"] = Field(
        default="per_plane", description="Scale each plane (or the whole series) to mean 1.")
    register_planes: bool = Field(
        default=False,
        description="Sub-pixel registration of the planes. A global phase tilt also shifts "
        "defocused planes (by z * tilt), so registration removes it: the retrieved phase then "
        "has no reliable tilt.")
    ground_truth: str | None = Field(
        default=None, description="Known phase map in rad (simulated series), for compare.")

    @model_validator(mode="after")
    def _distinct_planes(self) -> SeriesManifest:
        if self.defocus_um is not None and len(set(self.defocus_um)) != len(self.defocus_um):
            raise ValueError(f"defocus_um {self.defocus_um} repeats a distance")
        return self


@dataclass
class PhaseSeries:
    """Intensities ``(N, H, W)`` float32 at ``defocus_um`` with the physics to interpret them."""

    intensities: np.ndarray
    defocus_um: tuple[float, ...]
    wavelength_um: float
    pixel_size_um: float
    medium_index: float = 1.0
    source: str = "<array>"
    ground_truth: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.intensities = np.asarray(self.intensities, dtype=np.float32)
        if self.intensities.ndim != 3:
            raise ValueError(f"{self.source}: expected (N, H, W) planes, got shape "
                             f"{self.intensities.shape}")
        if len(self.defocus_um) != len(self.intensities):
            raise ValueError(f"{self.source}: {len(self.intensities)} planes but "
                             f"{len(self.defocus_um)} defocus distances {list(self.defocus_um)}")

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.intensities.shape[1]), int(self.intensities.shape[2])

    def planes(self, indices: list[int]) -> PhaseSeries:
        """The series restricted to (and reordered as) ``indices``."""
        return replace(self, intensities=self.intensities[indices],
                       defocus_um=tuple(self.defocus_um[i] for i in indices))

    def resampled(self, pixel_size_um: float) -> PhaseSeries:
        """The series on a grid of ``pixel_size_um`` (area-average down, bilinear up)."""
        import torch

        from mcnn.physics.functional import resize

        factor = self.pixel_size_um / pixel_size_um
        h, w = self.shape
        size = (max(1, round(h * factor)), max(1, round(w * factor)))
        x = resize(torch.from_numpy(self.intensities)[None], size)[0].numpy()
        truth = self.ground_truth
        if truth is not None:
            t = torch.from_numpy(np.asarray(truth, np.float32))[None, None]
            truth = resize(t, size)[0, 0].numpy()
        return replace(self, intensities=x, pixel_size_um=pixel_size_um, ground_truth=truth)


def read_manifest(path: str | Path) -> SeriesManifest:
    """A YAML/JSON manifest; errors are one line per field, naming the file."""
    from mcnn.config_io import load_config

    return load_config(SeriesManifest, Path(path))


def _plane_image(path: Path) -> np.ndarray:
    """One image file -> ``(H, W)`` or ``(N, H, W)`` float32 (colour averaged to grey)."""
    from mcnn.data.image_io import read_raw, to_nchw

    x = to_nchw(read_raw(path))  # (N, C, H, W)
    x = x.mean(axis=1)
    return x[0] if len(x) == 1 else x


def _read_hdf5(path: Path, dataset: str | None) -> np.ndarray:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if dataset is None:
                found: list[str] = []
                f.visititems(lambda name, obj: found.append(name)
                             if isinstance(obj, h5py.Dataset) and obj.ndim == 3 else None)
                if len(found) != 1:
                    raise ValueError(
                        f"{path}: {len(found)} 3-D datasets ({found[:5]}); name one with "
                        "dataset: in the manifest (or --dataset)")
                dataset = found[0]
            if dataset not in f:
                raise ValueError(f"{path}: no dataset {dataset!r}")
            data = np.asarray(f[dataset], dtype=np.float64)
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from None
    if data.ndim != 3:
        raise ValueError(f"{path}:{dataset}: expected (N, H, W) planes, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise ValueError(f"{path}:{dataset}: {int((~np.isfinite(data)).sum())} non-finite values")
    return data.astype(np.float32)


def _read_stack(path: Path, manifest: SeriesManifest) -> tuple[np.ndarray, float | None]:
    """``(planes (N, H, W), pixel size from the file or None)``."""
    from mcnn.data.image_io import list_images, read_raw, to_nchw

    if path.suffix.lower() in HDF5_SUFFIXES:
        return _read_hdf5(path, manifest.dataset), None
    if path.is_dir():
        files = ([path / f for f in manifest.files] if manifest.files else list_images(path))
        if not files:
            raise ValueError(f"{path}: no images in this folder")
        planes = [_plane_image(f) for f in files]
        bad = [str(f) for f, p in zip(files, planes, strict=True) if p.ndim != 2]
        if bad:
            raise ValueError(f"{bad[0]}: a folder series needs one 2-D image per plane")
        if len({p.shape for p in planes}) > 1:
            raise ValueError(f"{path}: the plane images differ in size "
                             f"({sorted({p.shape for p in planes})})")
        raw_px = read_raw(files[0]).pixel_size
        return np.stack(planes), _pixel_um(raw_px, files[0])
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder")
    raw = read_raw(path)
    x = to_nchw(raw).mean(axis=1)
    return x, _pixel_um(raw.pixel_size, path)


def _pixel_um(pixel_size: Any, path: Path) -> float | None:
    if pixel_size is None or pixel_size.unit != "um":
        return None
    if not math.isclose(pixel_size.y, pixel_size.x, rel_tol=1e-3):
        raise ValueError(f"{path}: pixels are not square ({pixel_size.y} x {pixel_size.x} um)")
    return float(pixel_size.x)


def _reference(path: Path, planes: int, shape: tuple[int, int], what: str) -> np.ndarray:
    ref = _plane_image(path)
    if ref.shape[-2:] != shape or (ref.ndim == 3 and len(ref) != planes):
        raise ValueError(f"{path}: {what} of shape {ref.shape} does not match the series "
                         f"({planes} planes of {shape[0]} x {shape[1]})")
    return ref


def register_planes(
    intensities: np.ndarray, defocus_um: tuple[float, ...], upsample: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel registration: each plane to its neighbour nearer focus, shifts accumulated.

    Neighbours look most alike, so chains of small comparisons are robust where comparing a
    far plane with focus is not. Returns ``(registered planes, shifts (N, 2) px (dy, dx))``.
    """
    from scipy.ndimage import shift as nd_shift
    from skimage.registration import phase_cross_correlation

    z = np.asarray(defocus_um, dtype=np.float64)
    h, w = intensities.shape[1:]
    window = np.outer(np.hanning(h), np.hanning(w))  # the frame edges must not vote for shift 0
    tapered = [(p - p.mean()) * window for p in intensities]
    order = np.argsort(z)
    ref = int(np.argmin(np.abs(z[order])))
    shifts = np.zeros((len(z), 2))
    for chain in (order[ref + 1:], order[:ref][::-1]):
        previous = order[ref]
        for k in chain:
            step, _, _ = phase_cross_correlation(tapered[previous], tapered[k],
                                                 upsample_factor=upsample, normalization=None)
            shifts[k] = shifts[previous] + step
            previous = k
    out = np.stack([nd_shift(p, s, order=3, mode="reflect") if np.any(s) else p
                    for p, s in zip(intensities, shifts, strict=True)])
    return out.astype(np.float32), shifts


def load_series(
    path: str | Path,
    manifest: SeriesManifest | str | Path | None = None,
    **values: Any,
) -> PhaseSeries:
    """Read a series; ``values`` (manifest fields, e.g. from the command line) override the
    manifest's. Every problem is a ``ValueError`` of one line naming the file or field."""
    path = Path(path)
    base = Path(".")
    if isinstance(manifest, (str, Path)):
        base = Path(manifest).parent
        manifest = read_manifest(manifest)
    data = manifest.model_dump() if manifest is not None else {}
    data.update({k: v for k, v in values.items() if v is not None})
    from mcnn.config_io import validate

    m = validate(SeriesManifest, data, "series settings")
    stack, file_px = _read_stack(path, m)
    pixel_um = m.pixel_size_um or file_px
    missing = [name for name, v in (("wavelength_um", m.wavelength_um),
                                    ("defocus_um", m.defocus_um), ("pixel_size_um", pixel_um))
               if v is None]
    if missing:
        raise ValueError(f"{path}: {', '.join(missing)} unknown; give them in a manifest or on "
                         "the command line")
    assert m.wavelength_um is not None and m.defocus_um is not None and pixel_um is not None
    if len(m.defocus_um) != len(stack):
        raise ValueError(f"{path}: {len(stack)} planes but defocus_um has {len(m.defocus_um)} "
                         f"values {m.defocus_um}")
    x = stack.astype(np.float64)
    shape = (x.shape[1], x.shape[2])
    if m.dark:
        x = x - _reference(base / m.dark, len(x), shape, "dark")
    if m.flat_field:
        flat = _reference(base / m.flat_field, len(x), shape, "flat_field")
        if m.dark:
            flat = flat - _reference(base / m.dark, len(x), shape, "dark")
        if np.any(flat <= 0):
            raise ValueError(f"{base / m.flat_field}: flat_field has {int((flat <= 0).sum())} "
                             "pixels <= 0 (after dark subtraction); cannot divide by them")
        x = x / flat
    means = x.mean(axis=(1, 2))
    if np.any(means <= 0):
        raise ValueError(f"{path}: plane {int(np.argmax(means <= 0))} has no signal (mean <= 0)")
    if m.normalise == "per_plane":
        x = x / means[:, None, None]
    elif m.normalise == "series":
        x = x / means.mean()
    z = tuple(float(v) for v in m.defocus_um)
    meta: dict[str, Any] = {}
    x32 = x.astype(np.float32)
    if m.register_planes:
        x32, shifts = register_planes(x32, z)
        meta["registration_shifts_px"] = shifts.round(3).tolist()
        logger.info("registered planes, shifts (dy, dx) px: %s", meta["registration_shifts_px"])
    truth = None
    if m.ground_truth:
        truth = _plane_image(base / m.ground_truth)
        if truth.shape != shape:
            raise ValueError(f"{base / m.ground_truth}: ground truth of shape {truth.shape}; "
                             f"the series is {shape[0]} x {shape[1]}")
    return PhaseSeries(x32, z, float(m.wavelength_um), float(pixel_um), m.medium_index,
                       str(path), truth, meta)

"""Ground truth cut from real images: scikit-image's bundled samples or a user's folder.

Each sample is a random crop with a random rescale, rotation and flip, so a handful of images gives
an endless stream of different content. Images are held as ``(C, H, W)`` float32 tensors in [0, 1]
(C = 1 or 3). Files are read by ``mcnn.data.image_io`` (one reader registry, one value policy);
scikit-image, OpenCV and tifffile are imported only when images are loaded.

Validation content is held out image by image: ``holdout_split`` divides the names (bundled) or
relative paths (folder) into disjoint train and validation sets.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mcnn.data.image_io import image_suffixes, normalise, read_raw, to_nchw
from mcnn.physics.config import BUNDLED_NAMES

logger = logging.getLogger(__name__)

_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)


def to_unit_tensor(array: np.ndarray, path: str | Path = "<array>") -> torch.Tensor:
    """Any 2-D/3-D image array -> ``(C, H, W)`` float32 in [0, 1], C in {1, 3}.

    Values follow the one policy of ``mcnn.data.image_io.normalise`` (8/16-bit unsigned scaled to
    [0, 1], other integers kept as counts, floats as they are; non-finite values refused); content
    must lie in [0, 1], so an image with values outside is then stretched to span [0, 1]. ``(H, W,
    C)`` arrays are colour (alpha dropped); of a ``(N, H, W)`` stack the first plane is used.
    """
    a = normalise(np.asarray(array), path)
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 3 and a.shape[-1] in (3, 4) and a.shape[0] not in (3, 4):
        a = a[..., :3].transpose(2, 0, 1)
    elif a.ndim == 3 and a.shape[0] in (3, 4):
        a = a[:3]
    elif a.ndim == 3:
        a = a[:1]  # a stack of planes: use the first
    else:
        raise ValueError(f"{path}: cannot use an image of shape {a.shape}")
    return _as_content(a)


def _as_content(a: np.ndarray) -> torch.Tensor:
    """``(C, H, W)`` float32 -> content in [0, 1] with C in {1, 3}: stretched to span [0, 1] when
    its values leave that range (counts, signed data); 3 colour channels kept, else the first."""
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 1.0)
    if lo < 0 or hi > 1:
        a = (a - lo) / max(hi - lo, 1e-12)
    a = a[:3] if a.shape[0] >= 3 else a[:1]
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def holdout_split(
    keys: Sequence[str], val_fraction: float, what: str = "content"
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split image keys (names, relative paths) into disjoint ``(train, val)``, deterministically.

    A key is held out when a stable hash of it, read as a number in [0, 1), is below
    ``val_fraction``: the decision depends on the key alone, so adding or removing other images
    never moves an image between the sets. At least one image lands on each side (the lowest hash
    goes to validation when none did, the highest back to training when all did).
    """
    keys = tuple(dict.fromkeys(keys))
    if len(keys) < 2:
        raise ValueError(
            f"{what}: {len(keys)} image(s); at least 2 are needed so that validation uses an "
            "image training never sees"
        )
    u = {k: _unit_hash(k) for k in keys}
    val = {k for k in keys if u[k] < val_fraction}
    if not val:
        val = {min(keys, key=u.__getitem__)}
    if len(val) == len(keys):
        val.discard(max(keys, key=u.__getitem__))
    return tuple(k for k in keys if k not in val), tuple(k for k in keys if k in val)


def _unit_hash(key: str) -> float:
    digest = hashlib.blake2b(key.encode(), digest_size=8, person=b"mcnn-holdout").digest()
    return int.from_bytes(digest, "little") / 2.0**64


def convert_channels(image: torch.Tensor, channels: int) -> torch.Tensor:
    """``(C, H, W)`` -> ``(channels, H, W)``: luminance for grey, repeated grey for colour."""
    c = image.shape[0]
    if c == channels:
        return image
    grey = (image * _LUMA).sum(0, keepdim=True) if c == 3 else image[:1]
    return grey.expand(channels, -1, -1)


def random_view(
    image: torch.Tensor,
    size: tuple[int, int],
    generator: torch.Generator,
    scale_range: tuple[float, float] = (0.5, 2.0),
    rotate: bool = True,
    flip: bool = True,
) -> torch.Tensor:
    """One random ``(C, H, W)`` view of ``image``: zoom, rotation, flip and position.

    ``scale`` is output px per source px (log-uniform in ``scale_range``); it is raised when needed
    so the rotated crop fits inside the image, which also upscales images smaller than ``size``.
    """
    h, w = size
    src_h, src_w = image.shape[-2:]
    u = torch.rand(6, generator=generator).tolist()
    lo, hi = scale_range
    scale = math.exp(math.log(lo) + u[0] * (math.log(hi) - math.log(lo)))
    angle = 2 * math.pi * u[1] if rotate else 0.0
    c, s = abs(math.cos(angle)), abs(math.sin(angle))
    # Bounding box of the rotated crop, in source px at scale 1.
    need_w, need_h = w * c + h * s, w * s + h * c
    scale = max(scale, need_w / (src_w - 1), need_h / (src_h - 1))
    src = image.unsqueeze(0)
    if scale < 0.75:  # shrink by area first so the bilinear lookup does not alias
        factor = scale / 0.9
        shrunk = (max(2, round(src_h * factor)), max(2, round(src_w * factor)))
        src = F.interpolate(src, size=shrunk, mode="area")
        scale *= src_w / shrunk[1]
        src_h, src_w = shrunk
        scale = max(scale, need_w / (src_w - 1), need_h / (src_h - 1))
    box_w, box_h = need_w / scale, need_h / scale
    cx = box_w / 2 + u[2] * max(0.0, (src_w - 1) - box_w)
    cy = box_h / 2 + u[3] * max(0.0, (src_h - 1) - box_h)
    sign = -1.0 if (flip and u[4] < 0.5) else 1.0
    # Output pixel offsets (from the crop centre) -> source pixel coordinates.
    oy = (torch.arange(h, dtype=torch.float32) - (h - 1) / 2).view(h, 1)
    ox = (torch.arange(w, dtype=torch.float32) - (w - 1) / 2).view(1, w) * sign
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    sx = cx + (cos_a * ox - sin_a * oy) / scale
    sy = cy + (sin_a * ox + cos_a * oy) / scale
    grid = torch.stack([2 * sx / (src_w - 1) - 1, 2 * sy / (src_h - 1) - 1], dim=-1)
    out = F.grid_sample(
        src, grid.unsqueeze(0), mode="bilinear", padding_mode="border", align_corners=True
    )
    return out[0]


class _ImageCrops:
    """Shared sampling: pick an image, take a random view, convert channels."""

    def __init__(self, scale_range: tuple[float, float], rotate: bool, flip: bool) -> None:
        if not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f"scale_range must satisfy 0 < low <= high, got {scale_range}")
        self.scale_range = scale_range
        self.rotate = rotate
        self.flip = flip

    def __len__(self) -> int:
        raise NotImplementedError

    def image(self, index: int) -> torch.Tensor:
        raise NotImplementedError

    def sample(
        self, batch: int, size: tuple[int, int], generator: torch.Generator, channels: int = 1
    ) -> torch.Tensor:
        """``(batch, channels, H, W)`` float32 in [0, 1]."""
        picks = torch.randint(0, len(self), (batch,), generator=generator).tolist()
        views = [
            convert_channels(
                random_view(
                    self.image(i), size, generator, self.scale_range, self.rotate, self.flip
                ),
                channels,
            )
            for i in picks
        ]
        return torch.stack(views).clamp(0, 1).contiguous()


class BundledImages(_ImageCrops):
    """Random views of images shipped with scikit-image (no download)."""

    def __init__(
        self,
        names: tuple[str, ...] | list[str] | None = None,
        scale_range: tuple[float, float] = (0.5, 2.0),
        rotate: bool = True,
        flip: bool = True,
    ) -> None:
        super().__init__(scale_range, rotate, flip)
        self.names = tuple(names) if names else BUNDLED_NAMES
        unknown = sorted(set(self.names) - set(BUNDLED_NAMES))
        if unknown:
            raise ValueError(f"unknown bundled images {unknown}; choose from {list(BUNDLED_NAMES)}")
        self._images: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.names)

    @property
    def keys(self) -> tuple[str, ...]:
        """One name per image, in index order (what ``holdout_split`` splits)."""
        return self.names

    def image(self, index: int) -> torch.Tensor:
        name = self.names[index]
        if name not in self._images:
            import skimage.data

            self._images[name] = to_unit_tensor(getattr(skimage.data, name)())
        return self._images[name]


def read_image(path: Path) -> torch.Tensor:
    """Decode one file to ``(C, H, W)`` float32 in [0, 1] (a stack gives its first frame); raises
    ValueError (``ImageFileError``) naming the file if it is unusable."""
    return _as_content(to_nchw(read_raw(path))[0])


class FolderImages(_ImageCrops):
    """Random views of a user's images (any format ``mcnn.data.image_io`` reads, any size).

    ``files`` restricts it to some of the folder's files (``subset``: the train or validation
    images); ``label`` names that subset in messages. Decoded images are kept in a
    least-recently-used cache of at most ``cache_mb`` megabytes so that later epochs do not decode
    again; each DataLoader worker holds its own cache.
    """

    def __init__(
        self,
        path: str | Path,
        recursive: bool = True,
        scale_range: tuple[float, float] = (0.5, 2.0),
        rotate: bool = True,
        flip: bool = True,
        cache_mb: float = 1024.0,
        *,
        files: Sequence[Path] | None = None,
        label: str = "",
    ) -> None:
        super().__init__(scale_range, rotate, flip)
        self.path = Path(path).expanduser()
        self.recursive = recursive
        self.cache_mb = cache_mb
        self.label = label
        where = f"image folder {self.path}" + (f" ({label} images)" if label else "")
        if not self.path.is_dir():
            raise ValueError(f"image folder {self.path} does not exist or is not a folder")
        if files is None:
            pattern = "**/*" if recursive else "*"
            suffixes = image_suffixes()
            files = sorted(
                p for p in self.path.glob(pattern) if p.is_file() and p.suffix.lower() in suffixes
            )
            if not files:
                raise ValueError(f"{where} holds no image ({', '.join(suffixes)})")
        self.files = list(files)
        if not self.files:
            raise ValueError(f"{where} holds no image")
        self.cache_bytes = int(cache_mb * 1e6)
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._cached_bytes = 0
        self._bad: set[int] = set()
        if self._first_readable(0) is None:
            raise ValueError(f"{where} holds no readable image")
        logger.info("%s: %d files", where, len(self.files))

    def __len__(self) -> int:
        return len(self.files)

    @property
    def keys(self) -> tuple[str, ...]:
        """Each file's path relative to the folder (POSIX), in index order."""
        return tuple(p.relative_to(self.path).as_posix() for p in self.files)

    def subset(self, keys: Sequence[str], label: str) -> FolderImages:
        """The same folder restricted to the files with these ``keys`` (a train or val split)."""
        wanted = set(keys)
        files = [p for p, k in zip(self.files, self.keys, strict=True) if k in wanted]
        return FolderImages(
            self.path, self.recursive, self.scale_range, self.rotate, self.flip, self.cache_mb,
            files=files, label=label,
        )

    def _first_readable(self, start: int) -> torch.Tensor | None:
        """The first decodable image at or after ``start`` (wrapping), skipping bad files."""
        for k in range(len(self.files)):
            index = (start + k) % len(self.files)
            if index in self._bad:
                continue
            try:
                return self._load(index)
            except ValueError as exc:
                logger.warning("skipping unreadable image: %s", exc)
                self._bad.add(index)
        return None

    def _load(self, index: int) -> torch.Tensor:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        image = read_image(self.files[index])
        size = image.numel() * image.element_size()
        if size <= self.cache_bytes:
            while self._cached_bytes + size > self.cache_bytes and self._cache:
                _, old = self._cache.popitem(last=False)
                self._cached_bytes -= old.numel() * old.element_size()
            self._cache[index] = image
            self._cached_bytes += size
        return image

    def image(self, index: int) -> torch.Tensor:
        image = self._first_readable(index)
        if image is None:
            label = f" ({self.label} images)" if self.label else ""
            raise ValueError(f"image folder {self.path}{label} holds no readable image")
        return image

"""Ground truth cut from real images: scikit-image's bundled samples or a user's folder.

Each sample is a random crop with a random rescale, rotation and flip, so a handful of images gives
an endless stream of different content. Images are held as ``(C, H, W)`` float32 tensors in [0, 1]
(C = 1 or 3). scikit-image, OpenCV and tifffile are imported only when images are loaded.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

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
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".pgm", ".ppm")
_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)


def to_unit_tensor(array: np.ndarray) -> torch.Tensor:
    """Any 2-D/3-D image array -> ``(C, H, W)`` float32 in [0, 1], C in {1, 3}.

    Integers are divided by their type's maximum (8 and 16 bit alike); floats already in [0, 1]
    are kept, other floats are stretched to [0, 1]; alpha channels are dropped.
    """
    a = np.asarray(array)
    if a.dtype == bool:
        a = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max)
    else:
        a = a.astype(np.float32)
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        if lo < 0 or hi > 1:
            a = (a - lo) / max(hi - lo, 1e-12)
        a = np.nan_to_num(a)
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 3 and a.shape[-1] in (3, 4) and a.shape[0] not in (3, 4):
        a = a[..., :3].transpose(2, 0, 1)
    elif a.ndim == 3 and a.shape[0] in (3, 4):
        a = a[:3]
    elif a.ndim == 3:
        a = a[:1]  # a stack of planes: use the first
    else:
        raise ValueError(f"cannot use an image of shape {a.shape}")
    if a.shape[0] == 2:
        a = a[:1]
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


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

    def image(self, index: int) -> torch.Tensor:
        name = self.names[index]
        if name not in self._images:
            import skimage.data

            self._images[name] = to_unit_tensor(getattr(skimage.data, name)())
        return self._images[name]


def read_image(path: Path) -> torch.Tensor:
    """Decode one file to ``(C, H, W)`` float32 in [0, 1]; raises ValueError if unreadable."""
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        try:
            array = tifffile.imread(path, key=0)
        except Exception as exc:  # tifffile raises many types for corrupt files
            raise ValueError(f"cannot read {path}: {exc}") from exc
    else:
        import cv2

        array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if array is None:
            raise ValueError(f"cannot read {path}")
        if array.ndim == 3 and array.shape[2] >= 3:
            array = cv2.cvtColor(array[..., :3], cv2.COLOR_BGR2RGB)
    return to_unit_tensor(array)


class FolderImages(_ImageCrops):
    """Random views of a user's images (PNG/JPEG/TIFF/BMP/WebP, 8 or 16 bit, any size).

    Decoded images are kept in a least-recently-used cache of at most ``cache_mb`` megabytes so that
    later epochs do not decode again; each DataLoader worker holds its own cache.
    """

    def __init__(
        self,
        path: str | Path,
        recursive: bool = True,
        scale_range: tuple[float, float] = (0.5, 2.0),
        rotate: bool = True,
        flip: bool = True,
        cache_mb: float = 1024.0,
    ) -> None:
        super().__init__(scale_range, rotate, flip)
        self.path = Path(path).expanduser()
        if not self.path.is_dir():
            raise ValueError(f"image folder {self.path} does not exist or is not a folder")
        pattern = "**/*" if recursive else "*"
        self.files = sorted(
            p for p in self.path.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not self.files:
            raise ValueError(
                f"image folder {self.path} holds no image ({', '.join(IMAGE_SUFFIXES)})"
            )
        self.cache_bytes = int(cache_mb * 1e6)
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._cached_bytes = 0
        self._bad: set[int] = set()
        if self._first_readable(0) is None:
            raise ValueError(f"image folder {self.path} holds no readable image")
        logger.info("image folder %s: %d files", self.path, len(self.files))

    def __len__(self) -> int:
        return len(self.files)

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
            raise ValueError(f"image folder {self.path} holds no readable image")
        return image

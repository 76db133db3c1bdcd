"""Where ground truth comes from: one validated config per kind and ``build_content``.

``procedural`` needs nothing, ``bundled`` uses the images inside scikit-image, ``folder`` points at a
user's own collection (any size, PNG/JPEG/TIFF, 8 or 16 bit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mcnn.physics.base import ContentSource
from mcnn.physics.images import BUNDLED_NAMES, BundledImages, FolderImages
from mcnn.physics.procedural import ProceduralContent


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _ViewConfig(_Strict):
    """Random view augmentation shared by the image sources."""

    scale_range: tuple[float, float] = Field(
        default=(0.5, 2.0), description="Zoom, output px per image px, drawn log-uniformly."
    )
    rotate: bool = Field(default=True, description="Rotate by a random angle.")
    flip: bool = Field(default=True, description="Mirror half of the views.")

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
        default=None, description=f"Subset of {list(BUNDLED_NAMES)}; None uses all."
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
        return names


class FolderContentConfig(_ViewConfig):
    """Random views of a folder of images (searched recursively by default)."""

    kind: Literal["folder"] = "folder"
    path: Path = Field(description="Folder of PNG/JPEG/TIFF/BMP/WebP images of any size.")
    recursive: bool = True
    cache_mb: float = Field(
        default=1024.0, ge=0, le=1e6, description="Decoded-image cache per worker, megabytes."
    )


ContentConfig = Annotated[
    ProceduralContentConfig | BundledContentConfig | FolderContentConfig,
    Field(discriminator="kind"),
]


def build_content(
    cfg: ProceduralContentConfig | BundledContentConfig | FolderContentConfig,
) -> ContentSource:
    """Make the content source a config describes (a folder is checked here, not at validation)."""
    if isinstance(cfg, ProceduralContentConfig):
        return ProceduralContent(
            weights=(cfg.field_weight, cfg.shapes_weight, cfg.texture_weight),
            beta_range=cfg.beta_range,
            max_shapes=cfg.max_shapes,
        )
    if isinstance(cfg, BundledContentConfig):
        return BundledImages(cfg.names, cfg.scale_range, cfg.rotate, cfg.flip)
    if isinstance(cfg, FolderContentConfig):
        return FolderImages(
            cfg.path, cfg.recursive, cfg.scale_range, cfg.rotate, cfg.flip, cfg.cache_mb
        )
    raise TypeError(f"not a content config: {type(cfg).__name__}")

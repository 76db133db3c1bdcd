"""Validated descriptions of where training pairs come from (one discriminated union on ``kind``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PairsDataConfig(_Strict):
    """A recording made by ``acquire-pairs`` (camera frame -> screen image)."""

    kind: Literal["pairs"] = "pairs"
    path: Path = Field(description="Recording folder written by acquire-pairs.")
    camera_roi: tuple[int, int, int, int] | None = Field(
        default=None,
        description="Camera crop (x, y, width, height) in pixels; None uses the ROI stored with the "
        "recording's calibration, or the whole frame when there is none.",
    )
    mirror: bool = Field(default=False, description="Flip the camera frame left-right.")
    camera_size: tuple[int, int] | None = Field(
        default=None, description="Resize the (cropped) camera frame to (width, height)."
    )
    screen_size: tuple[int, int] | None = Field(
        default=None, description="Resize the screen image to (width, height)."
    )
    grayscale: bool = Field(default=False, description="Use one luminance channel for both sides.")
    test_first: int = Field(
        default=256, ge=0, description="The first N pairs in time form the held-out set."
    )
    skip_flagged: bool = Field(default=True, description="Leave out pairs the recorder flagged.")


class FolderDataConfig(_Strict):
    """Two folders of images matched by file name stem (PNG/TIFF/NPY)."""

    kind: Literal["folder"] = "folder"
    inputs: Path
    targets: Path
    val_count: int = Field(default=16, ge=1, description="Last N pairs (sorted by name) held out.")
    crop: int | None = Field(
        default=None, ge=8, description="Random square training crops of this input size."
    )

    @model_validator(mode="after")
    def _different_folders(self) -> FolderDataConfig:
        if self.inputs == self.targets:
            raise ValueError(f"inputs and targets must differ (both are {self.inputs})")
        return self


# The simulated-data config lives with the simulators (mcnn.physics) and is added in mcnn.config.
DataKind = Annotated[PairsDataConfig | FolderDataConfig, Field(discriminator="kind")]

"""The network's validated description: everything needed to rebuild it from a checkpoint's JSON."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class LowPassConfig(BaseModel):
    """Fixed low-pass front layer (the paper's denoiser): box and Gaussian filters of the input."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    mode: Literal["concat", "replace"] = Field(
        default="concat",
        description="concat: the input plus its 4 filtered copies; replace: only the filtered copies.",
    )
    box_sizes_px: tuple[int, int] = Field(default=(5, 7), description="Box filter sizes (odd, px).")
    gaussian_sigmas_px: tuple[float, float] = Field(
        default=(3.0, 5.0), description="Gaussian standard deviations (px)."
    )
    min_gaussian_size_px: int = Field(default=15, ge=3, description="Smallest Gaussian kernel size.")
    trainable: bool = Field(default=False, description="Let the optimiser change the filters.")

    @model_validator(mode="after")
    def _odd_boxes(self) -> LowPassConfig:
        if any(s % 2 == 0 or s < 1 for s in self.box_sizes_px):
            raise ValueError(f"box_sizes_px must be odd and positive, got {self.box_sizes_px}")
        if any(s <= 0 for s in self.gaussian_sigmas_px):
            raise ValueError(f"gaussian_sigmas_px must be positive, got {self.gaussian_sigmas_px}")
        return self


class TieFrontConfig(BaseModel):
    """Fixed physics front for defocus series: the uniform-intensity TIE phase of the input planes
    as one more input channel (``mcnn.models.tie_front``).

    The network then corrects a physical first guess (the TIE's small-defocus linearisation, its
    noisy low frequencies) instead of learning the inverse Laplacian from data. The physics must be
    the data's: a training config on the defocus simulator fills the ``None`` fields from it and
    refuses values that disagree.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: Literal["tie"] = "tie"
    defocus_um: list[float] | None = Field(
        default=None, min_length=1, max_length=16,
        description="Distance of each input channel, um (None: the simulator's).")
    wavelength_um: float | None = Field(default=None, gt=0, le=20, description="Wavelength, um.")
    pixel_size_um: float | None = Field(default=None, gt=0, le=1000, description="Pixel pitch, um.")
    medium_index: float | None = Field(default=None, ge=1, le=4, description="Medium index n.")
    regularization: float = Field(
        default=0.1, ge=0, le=1e6,
        description="Tikhonov weight of the inverse Laplacian (x q_min^4, as mcnn.phase.tie).")

    def missing(self) -> list[str]:
        """Physics fields still unset (a model cannot be built until they are)."""
        return [n for n in ("defocus_um", "wavelength_um", "pixel_size_um", "medium_index")
                if getattr(self, n) is None]

    @model_validator(mode="after")
    def _some_defocus(self) -> TieFrontConfig:
        if self.defocus_um is not None and all(z == 0 for z in self.defocus_um):
            raise ValueError("tie_front.defocus_um: needs a plane at non-zero defocus "
                             f"(got {self.defocus_um}); the TIE has no signal in focus")
        return self


class ModelConfig(BaseModel):
    """MCNN: a U-Net whose coarse decoder levels each emit an extra output (a branch).

    ``branches=0`` gives the plain U-Net with otherwise identical layers, the fair baseline.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    in_channels: int = Field(default=1, ge=1, le=64)
    out_channels: int = Field(default=1, ge=1, le=64)
    depth: int = Field(default=5, ge=1, le=10, description="Number of stride-2 levels.")
    base_width: int = Field(default=32, ge=1, le=1024, description="Channels at full resolution.")
    max_width: int = Field(default=512, ge=1, le=4096, description="Channel cap for deep levels.")
    branches: int = Field(
        default=3, ge=0, le=13,
        description="Coarse outputs at 1/2, 1/4, ... of the output size; at most depth + "
        "log2(output_scale), the coarsest sitting on the bottleneck (as in the reference network).",
    )
    branch_feedback: bool = Field(
        default=False,
        description="Feed each coarse output, upsampled, into the next finer decoder level.",
    )
    skip: Literal["concat", "add"] = Field(default="concat", description="How skips are merged.")
    cell: Literal["conv", "bottleneck"] = Field(
        default="conv",
        description="conv: one stride-2 (transposed) convolution per cell; bottleneck: ResNeXt-style "
        "grouped depthwise-separable residual blocks (deep, fewer parameters).",
    )
    kernel_size: int = Field(default=4, ge=2, le=7, description="Kernel of the stride-2 convolutions.")
    blocks_per_level: int = Field(default=1, ge=1, le=8, description="Bottleneck blocks per level.")
    groups: int = Field(default=32, ge=1, description="Cardinality of the bottleneck's grouped conv.")
    activation: Literal["relu", "leaky_relu", "gelu", "silu", "elu"] = "leaky_relu"
    norm: Literal["none", "batch", "group", "instance"] = Field(
        default="none",
        description="none by default: the paper found group/batch norm cause stripe/speckle artefacts.",
    )
    output_scale: int = Field(
        default=1, description="Output size / input size (1, 2, 4 or 8), e.g. 640x360 -> 1280x720."
    )
    lowpass: LowPassConfig | None = Field(default=None, description="Fixed low-pass front layer.")
    tie_front: TieFrontConfig | None = Field(
        default=None, description="Defocus series: add the TIE phase as an input channel.")
    first_conv: Literal["full", "stride2"] = Field(
        default="full",
        description="full: a 3x3 conv to base_width channels at full resolution feeds the encoder; "
        "stride2 (pix2pix, the paper): the first stride-2 cell reads the input (or its low-pass "
        "stack) directly and the last decoder stage concatenates that input (a few channels, "
        "whatever skip is), so the only full-resolution features are the last stage's "
        "base_width channels.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if self.output_scale not in (1, 2, 4, 8):
            raise ValueError(f"output_scale must be 1, 2, 4 or 8, got {self.output_scale}")
        levels = self.depth + self.output_scale.bit_length() - 1
        if self.branches > levels:
            raise ValueError(
                f"branches={self.branches} needs that many coarse levels; depth={self.depth} with "
                f"output_scale={self.output_scale} gives {levels} (1/2 .. 1/{2**levels}, the "
                "last on the bottleneck)"
            )
        front = self.tie_front
        if front is not None and front.defocus_um is not None and (
                len(front.defocus_um) != self.in_channels):
            raise ValueError(
                f"tie_front.defocus_um has {len(front.defocus_um)} distances but in_channels="
                f"{self.in_channels}; give one distance per input plane")
        if self.max_width < self.base_width:
            raise ValueError(
                f"max_width={self.max_width} must be >= base_width={self.base_width}"
            )
        return self

    @property
    def size_multiple(self) -> int:
        """Input sizes are padded to a multiple of this and cropped back."""
        return 2**self.depth

    def width(self, level: int) -> int:
        return min(self.base_width * 2**level, self.max_width)

"""The hidden-screen rig: a camera films a door that is lit by a screen the camera cannot see.

``ScreenRigPhysics`` is the forward model (screen image -> camera frame); ``ScreenRigSimulator``
wraps it to make training pairs ``(camera view, screen image)``. A rig is one fixed physical set-up,
so every fixed part (light transport, door albedo, colour response, warp) is drawn once from
``seed``; only the camera noise comes from the ``generator`` passed to ``forward``.

Signal chain, in order (all images ``(B, 3, H, W)`` float32):

1. the screen is resized to the camera grid and mildly warped (the door is seen at an angle);
2. light transport: a few broad Gaussian blurs (widths ``blur_px / 2 .. 2 * blur_px``) mixed by
   smooth, spatially varying weights, plus a ``global_mix`` share of the screen's mean colour that
   arrives everywhere after bouncing around the room (a low-rank transport matrix);
3. left-right mirror flip (the door faces the screen), door albedo texture, vignetting;
4. sensor colour cross-talk (a 3x3 matrix whose rows sum to 1), exposure gain, ambient light;
5. shot noise (Gaussian approximation of Poisson with ``photons_full_scale`` photons at signal 1)
   and read noise ``noise_std``, clipping to [0, 1], then gamma encoding ``x ** (1 / gamma)``.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

from mcnn.physics.base import ContentSource, Simulator
from mcnn.physics.config import ScreenRigConfig
from mcnn.physics.functional import gaussian_blur, power_law_field, resize, uniform
from mcnn.physics.noise import clip, gain_offset, read_noise, shot_noise

logger = logging.getLogger(__name__)


def _wide_blur(x: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Gaussian blur of a large ``sigma_px``, computed on a coarser grid for speed."""
    h, w = x.shape[-2:]
    step = max(1, int(sigma_px // 3))
    if step == 1:
        return gaussian_blur(x, sigma_px)
    small = F.adaptive_avg_pool2d(x, (max(1, math.ceil(h / step)), max(1, math.ceil(w / step))))
    small = gaussian_blur(small, sigma_px / step)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)


class ScreenRigPhysics(nn.Module):
    """Forward model of the rig: ``camera = gamma(noise(exposure * C @ (A * V * T(screen)) + amb))``.

    Keyword-only so that a rig reads like its description. ``camera_hw`` is ``(height, width)`` in
    pixels; ``blur_px`` is the middle transport blur sigma in camera pixels; ``noise_std`` is the read
    noise in units of full scale; ``photons_full_scale`` sets shot noise (None: none). The noise is
    ``mcnn.physics.noise``: gain/offset, Gaussian shot noise, read noise, clipping.
    """

    # fixed parts of the rig, registered as buffers (declared for the type checker)
    mix_weights: torch.Tensor
    bounce_map: torch.Tensor
    albedo: torch.Tensor
    vignette: torch.Tensor
    colour_matrix: torch.Tensor
    ambient: torch.Tensor
    warp_grid: torch.Tensor

    def __init__(
        self,
        *,
        camera_hw: tuple[int, int] = (180, 320),
        seed: int = 0,
        blur_px: float = 12.0,
        noise_std: float = 0.01,
        photons_full_scale: float | None = 2000.0,
        mirror: bool = True,
        global_mix: float = 0.15,
        albedo_contrast: float = 0.3,
        vignetting: float = 0.4,
        crosstalk: float = 0.1,
        ambient: float = 0.05,
        gamma: float = 2.2,
        warp: float = 0.05,
        n_kernels: int = 3,
    ) -> None:
        super().__init__()
        height, width = camera_hw
        if width < 4 or height < 4:
            raise ValueError(f"camera_hw must be at least (4, 4) pixels, got {camera_hw}")
        if n_kernels < 1:
            raise ValueError(f"n_kernels must be >= 1, got {n_kernels}")
        self.camera_hw = (int(height), int(width))
        self.seed = seed
        self.blur_px = float(blur_px)
        self.noise_std = float(noise_std)
        self.photons_full_scale = photons_full_scale
        self.mirror = mirror
        self.global_mix = float(global_mix)
        self.gamma = float(gamma)
        self.sigmas_px = [self.blur_px * 2.0**e for e in torch.linspace(-1, 1, n_kernels).tolist()]
        if n_kernels == 1:
            self.sigmas_px = [self.blur_px]

        g = torch.Generator().manual_seed(seed)
        size = (int(height), int(width))
        # Where each blur width dominates: smooth fields through a softmax, summing to 1 per pixel.
        logits = power_law_field(1, n_kernels, size, 4.0, g)
        self.register_buffer("mix_weights", torch.softmax(4.0 * logits, dim=1))
        # Room bounce: the screen's mean colour arrives with a smooth, gently varying gain.
        bounce = 0.75 + 0.5 * power_law_field(1, 1, size, 4.0, g)
        self.register_buffer("bounce_map", bounce)
        # Door albedo: a natural-looking texture with a slight colour tint.
        texture = power_law_field(1, 1, size, 2.5, g)
        tint = 0.85 + 0.15 * torch.rand(1, 3, 1, 1, generator=g)
        self.register_buffer("albedo", (1.0 - albedo_contrast * texture) * tint)
        # Vignetting: fractional falloff ``vignetting`` at the corners, quadratic in radius.
        yy = torch.linspace(-1, 1, height).view(-1, 1)
        xx = torch.linspace(-1, 1, width).view(1, -1)
        r2 = (xx**2 + yy**2) / 2.0
        self.register_buffer("vignette", (1.0 - vignetting * r2).view(1, 1, height, width))
        # Sensor colour response: identity plus cross-talk, rows summing to 1 (white stays white).
        mix = torch.eye(3) + crosstalk * torch.rand(3, 3, generator=g) * (1 - torch.eye(3))
        self.register_buffer("colour_matrix", mix / mix.sum(dim=1, keepdim=True))
        self.register_buffer("ambient", ambient * (0.8 + 0.4 * torch.rand(1, 3, 1, 1, generator=g)))
        # Keystone-like warp: each corner moves by up to ``warp`` of the half-width.
        corners = warp * (2 * torch.rand(2, 2, 2, generator=g) - 1)  # (corner y, corner x, dx/dy)
        ty = torch.linspace(0, 1, height).view(-1, 1, 1)
        tx = torch.linspace(0, 1, width).view(1, -1, 1)
        offset = (
            (1 - ty) * (1 - tx) * corners[0, 0]
            + (1 - ty) * tx * corners[0, 1]
            + ty * (1 - tx) * corners[1, 0]
            + ty * tx * corners[1, 1]
        )
        base = torch.stack(torch.broadcast_tensors(xx, yy), dim=-1)  # (H, W, 2) as (x, y)
        self.register_buffer("warp_grid", (base + offset).unsqueeze(0))

    def light_on_door(self, screen: torch.Tensor) -> torch.Tensor:
        """Irradiance the door reflects towards the camera, before the sensor (linear, no noise)."""
        if screen.ndim != 4 or screen.shape[1] != 3:
            raise ValueError(f"screen must be (B, 3, H, W), got {tuple(screen.shape)}")
        x = resize(screen.float(), self.camera_hw)
        grid = self.warp_grid.expand(x.shape[0], -1, -1, -1)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
        if self.mirror:
            x = x.flip(-1)  # from here on, everything is in camera coordinates
        blurred = torch.stack([_wide_blur(x, s) for s in self.sigmas_px], dim=1)  # (B,K,3,H,W)
        local = (self.mix_weights.unsqueeze(2) * blurred).sum(dim=1)
        bounce = x.mean(dim=(2, 3), keepdim=True) * self.bounce_map
        light = (1.0 - self.global_mix) * local + self.global_mix * bounce
        return light * self.albedo * self.vignette

    def forward(
        self,
        screen: torch.Tensor,
        generator: torch.Generator | None = None,
        exposure: float | torch.Tensor = 1.0,
    ) -> torch.Tensor:
        """Render camera frames ``(B, 3, H_cam, W_cam)`` in [0, 1] from screens in [0, 1].

        ``exposure`` is a gain (float or ``(B,)`` tensor); ``generator`` drives the noise only and is
        required when the rig has noise (no draw ever comes from the global random state).
        """
        light = self.light_on_door(screen)
        sensor = torch.einsum("ij,bjhw->bihw", self.colour_matrix, light)
        sensor = gain_offset(sensor, exposure, self.ambient)
        noisy = self.photons_full_scale is not None or self.noise_std > 0
        if noisy:
            if generator is None:
                raise ValueError("ScreenRigPhysics with noise needs a torch.Generator for the noise")
            if self.photons_full_scale is not None:
                sensor = shot_noise(sensor, self.photons_full_scale, generator, gaussian=True)
            if self.noise_std > 0:
                sensor = read_noise(sensor, self.noise_std, generator)
        return clip(sensor, 0.0, 1.0) ** (1.0 / self.gamma)


class ScreenRigSimulator(Simulator):
    """Training pairs for the rig; the physics is built once per camera (input) size."""

    in_channels = 3
    out_channels = 3

    def __init__(self, config: ScreenRigConfig | None = None) -> None:
        super().__init__()
        self.config = config or ScreenRigConfig()
        self.scale = self.config.scale
        self._rigs: dict[tuple[int, int], ScreenRigPhysics] = {}

    def physics(self, size: tuple[int, int]) -> ScreenRigPhysics:
        """The rig for camera (input) size ``(H, W)``; the same seed gives the same rig."""
        if size not in self._rigs:
            c = self.config
            self._rigs[size] = ScreenRigPhysics(
                camera_hw=size,
                seed=c.rig_seed,
                blur_px=c.blur_px,
                noise_std=c.noise_std,
                photons_full_scale=c.photons_full_scale,
                mirror=c.mirror,
                global_mix=c.global_mix,
                albedo_contrast=c.albedo_contrast,
                vignetting=c.vignetting,
                crosstalk=c.crosstalk,
                ambient=c.ambient,
                gamma=c.gamma,
                warp=c.warp,
            )
        return self._rigs[size]

    def sample(
        self,
        batch: int,
        size: tuple[int, int],
        generator: torch.Generator,
        content: ContentSource,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = size
        screen = content.sample(batch, (h * self.scale, w * self.scale), generator, channels=3)
        lo, hi = self.config.exposure_range
        exposure = uniform(batch, lo, hi, generator, log=True)
        camera = self.physics((h, w))(screen, generator=generator, exposure=exposure)
        return camera, screen

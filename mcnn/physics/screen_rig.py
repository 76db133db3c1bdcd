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

That is the ``easy`` transport (``transport="easy"``, the default): blurs of 6-24 camera pixels on
display values taken as linear light. ``transport="realistic"`` replaces steps 1-2 with
:class:`DoorTransport`, radiometry of the real set-up: the screen is an area light whose display
values are decoded to linear radiance (sRGB), and each point of a Lambertian door at ``distance_m``
(turned by ``door_angle_deg``) integrates the *whole* screen with cosine and inverse-square weights,
optionally behind an occluder edge (penumbrae). The kernel spans the whole door, so it is a fixed
``(door points, screen points)`` matrix per rig, precomputed on coarse grids.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

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


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """Display values in [0, 1] -> relative linear radiance (the sRGB decoding curve)."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


class DoorTransport(nn.Module):
    """Screen radiance -> irradiance on a Lambertian door, as one precomputed linear operator.

    Geometry (metres, right-handed): the screen lies in the plane ``z = 0``, centred on the axis,
    ``screen_size_m = (height, width)``, emitting towards +z as a Lambertian (cosine) emitter. The
    door is a ``door_size_m`` rectangle centred at ``(0, 0, distance_m)``, facing the screen, turned
    by ``door_angle_deg`` about the vertical axis. For door point ``p`` (normal ``n_d``) and screen
    element ``q`` (area ``dA``, normal ``+z``), ``E(p) = sum_q L(q) cos(t_s) cos(t_d) / r^2 dA``
    (r = |p - q|). An optional occluder is the half-plane ``x > occluder_x_m`` in the plane
    ``z = occluder_z_frac * distance_m``: a ray that crosses it is blocked, which casts a penumbra.
    Irradiance is returned divided by pi (1 = the irradiance of a white screen filling the whole
    hemisphere), on a ``door_grid`` of ``(rows, cols)`` samples; the screen is averaged to
    ``screen_grid`` elements first.
    """

    matrix: torch.Tensor

    def __init__(
        self,
        *,
        distance_m: float = 0.5,
        door_angle_deg: float = 0.0,
        screen_size_m: tuple[float, float] = (0.34, 0.6),
        door_size_m: tuple[float, float] = (0.6, 0.9),
        occluder_x_m: float | None = None,
        occluder_z_frac: float = 0.5,
        door_grid: tuple[int, int] = (24, 36),
        screen_grid: tuple[int, int] = (18, 32),
    ) -> None:
        super().__init__()
        if distance_m <= 0:
            raise ValueError(f"distance_m must be > 0, got {distance_m}")
        if not 0 < occluder_z_frac < 1:
            raise ValueError(f"occluder_z_frac must be in (0, 1), got {occluder_z_frac}")
        self.door_grid = (int(door_grid[0]), int(door_grid[1]))
        self.screen_grid = (int(screen_grid[0]), int(screen_grid[1]))
        self.distance_m = float(distance_m)
        d = torch.float64
        sh, sw = screen_size_m
        gh, gw = screen_grid
        sy = (torch.arange(gh, dtype=d) + 0.5) / gh * sh - sh / 2
        sx = (torch.arange(gw, dtype=d) + 0.5) / gw * sw - sw / 2
        qy, qx = torch.meshgrid(sy, sx, indexing="ij")
        q = torch.stack([qx.ravel(), -qy.ravel(), torch.zeros(gh * gw, dtype=d)], dim=1)  # row 0 on top
        d_area = (sh / gh) * (sw / gw)
        dh, dw = door_size_m
        rh, rw = door_grid
        uy = (torch.arange(rh, dtype=d) + 0.5) / rh * dh - dh / 2
        ux = (torch.arange(rw, dtype=d) + 0.5) / rw * dw - dw / 2
        py, px = torch.meshgrid(uy, ux, indexing="ij")
        a = math.radians(door_angle_deg)
        # door column axis (world) and normal (towards the screen)
        axis = torch.tensor([math.cos(a), 0.0, math.sin(a)], dtype=d)
        normal = torch.tensor([math.sin(a), 0.0, -math.cos(a)], dtype=d)
        p = (px.ravel()[:, None] * axis + (-py.ravel())[:, None] * torch.tensor([0.0, 1.0, 0.0],
             dtype=d) + torch.tensor([0.0, 0.0, distance_m], dtype=d))
        v = p[:, None, :] - q[None, :, :]  # (Nd, Ns, 3) from screen to door
        r2 = (v**2).sum(-1)
        r = r2.sqrt()
        cos_s = (v[..., 2] / r).clamp(min=0.0)
        cos_d = (-(v * normal).sum(-1) / r).clamp(min=0.0)
        weights = cos_s * cos_d / r2 * d_area / math.pi
        if occluder_x_m is not None:
            z_occ = occluder_z_frac * distance_m
            t = (z_occ - q[None, :, 2]) / v[..., 2].clamp(min=1e-9)
            x_cross = q[None, :, 0] + t * v[..., 0]
            weights = torch.where((v[..., 2] > 0) & (x_cross > occluder_x_m), 0.0, weights)
        self.register_buffer("matrix", weights.float())

    def forward(self, radiance: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` linear screen radiance -> ``(B, C, rows, cols)`` door irradiance / pi."""
        b, c = radiance.shape[:2]
        small = F.adaptive_avg_pool2d(radiance.float(), self.screen_grid).reshape(b, c, -1)
        door = small @ self.matrix.T
        return door.reshape(b, c, *self.door_grid)


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
        transport: Literal["easy", "realistic"] = "easy",
        distance_m: float = 0.5,
        door_angle_deg: float = 0.0,
        occluder_x_m: float | None = None,
        door_gain: float = 3.0,
    ) -> None:
        super().__init__()
        if transport not in ("easy", "realistic"):
            raise ValueError(f"transport must be 'easy' or 'realistic', got {transport!r}")
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
        self.transport = transport
        self.door_gain = float(door_gain)
        self.door: DoorTransport | None = None
        if transport == "realistic":
            rows = max(8, min(height, 24))
            cols = max(8, min(width, round(rows * width / height)))
            self.door = DoorTransport(distance_m=distance_m, door_angle_deg=door_angle_deg,
                                      occluder_x_m=occluder_x_m, door_grid=(rows, cols))

    def light_on_door(self, screen: torch.Tensor) -> torch.Tensor:
        """Irradiance the door reflects towards the camera, before the sensor (linear, no noise)."""
        if screen.ndim != 4 or screen.shape[1] != 3:
            raise ValueError(f"screen must be (B, 3, H, W), got {tuple(screen.shape)}")
        if self.door is not None:
            return self._realistic_light(screen)
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

    def _realistic_light(self, screen: torch.Tensor) -> torch.Tensor:
        """Radiometric transport (``DoorTransport``) on linear light, then the door's albedo."""
        assert self.door is not None
        radiance = srgb_to_linear(screen.float())
        door = self.door_gain * self.door(radiance)
        light = F.interpolate(door, size=self.camera_hw, mode="bilinear", align_corners=False)
        if self.mirror:
            light = light.flip(-1)  # the camera faces the door, which faces the screen
        bounce = radiance.mean(dim=(2, 3), keepdim=True) * self.bounce_map
        light = (1.0 - self.global_mix) * light + self.global_mix * self.door_gain * 0.1 * bounce
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


REALISTIC_FIELDS = ("transport", "distance_m", "door_angle_deg", "occluder_x_m", "door_gain")
"""``ScreenRigPhysics`` keywords a ``ScreenRigConfig`` passes on once it has these fields."""


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
                **{k: v for k, v in c.model_dump().items() if k in REALISTIC_FIELDS},
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

"""TIE front for defocus series: the network gets a physical first guess of the phase.

From the input planes ``I_k`` at distances ``z_k`` (um) it estimates the axial derivative
``dI/dz`` (least-squares line through the planes; one plane: ``(I - mean I) / z``, the
pure-phase-object assumption of a uniform in-focus intensity) and solves the uniform-intensity TIE
``laplacian(phi) = -k (dI/dz) / mean(I)`` spectrally on a mirror-extended grid with the Tikhonov
damping of ``mcnn.phase.tie`` (``alpha = regularization * q_min^4``). The phase is appended as one
more channel, so ``FFT-TIE`` is what the network starts from and corrects (large-defocus
nonlinearity, noise in the low frequencies).

Runs in float32 outside autocast (FFTs have no bf16 kernels on CPU). TorchScript-scriptable; ONNX
has no FFT export here, so models with this front export to TorchScript only.
"""

# No `from __future__ import annotations` here: TorchScript reads the class-level buffer
# annotations and cannot resolve them as strings.
import math

import torch
from torch import nn

from mcnn.models.config import TieFrontConfig


def _mirror(x: torch.Tensor) -> torch.Tensor:
    """``(..., H, W)`` -> ``(..., 2H - 2, 2W - 2)`` whole-sample even extension (DCT-I, Neumann
    boundaries), as ``mcnn.phase.tie``."""
    if x.shape[-2] > 2:
        x = torch.cat([x, x.flip(-2)[..., 1:-1, :]], dim=-2)
    if x.shape[-1] > 2:
        x = torch.cat([x, x.flip(-1)[..., :, 1:-1]], dim=-1)
    return x


class TieFront(nn.Module):
    """Appends the TIE phase (rad) of the input planes: ``(B, N, H, W)`` -> ``(B, N + 1, H, W)``."""

    slope: torch.Tensor
    at_focus: torch.Tensor

    def __init__(self, in_channels: int, cfg: TieFrontConfig) -> None:
        super().__init__()
        missing = cfg.missing()
        if missing:
            raise ValueError(f"model.tie_front: {', '.join(missing)} not set (a training config "
                             "on the defocus simulator fills them from data.simulator)")
        assert cfg.defocus_um is not None and cfg.wavelength_um is not None
        assert cfg.pixel_size_um is not None and cfg.medium_index is not None
        z = [float(v) for v in cfg.defocus_um]  # Python floats: models are also built on "meta"
        if len(z) != in_channels:
            raise ValueError(f"model.tie_front: {len(z)} distances for {in_channels} inputs")
        n = len(z)
        z_mean = sum(z) / n
        spread = sum((v - z_mean) ** 2 for v in z)
        if spread > 0:  # a line through the planes: slope and value at z = 0
            slope = [(v - z_mean) / spread for v in z]
            at_focus = [1.0 / n - z_mean * s for s in slope]
            self.single = False
        else:  # one distance: (I - mean I) / z, in-focus intensity uniform
            slope = [1.0 / (z[0] * n)] * n
            at_focus = [1.0 / n] * n
            self.single = True
        self.register_buffer("slope", torch.tensor(slope).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("at_focus", torch.tensor(at_focus).view(1, -1, 1, 1),
                             persistent=False)
        self.k = 2 * math.pi * cfg.medium_index / cfg.wavelength_um
        self.pixel_size_um = cfg.pixel_size_um
        self.regularization = cfg.regularization

    def phase(self, x: torch.Tensor) -> torch.Tensor:
        """The TIE phase ``(B, 1, H, W)``, mean 0, from planes ``(B, N, H, W)``."""
        x = x.float()
        h, w = x.shape[-2], x.shape[-1]
        didz = (x * self.slope).sum(dim=1, keepdim=True)
        if self.single:
            didz = didz - didz.mean(dim=(2, 3), keepdim=True)
        focus = (x * self.at_focus).sum(dim=1, keepdim=True).mean(dim=(2, 3), keepdim=True)
        rhs = _mirror(-self.k * didz / focus.clamp_min(1e-6))
        hh, ww = rhs.shape[-2], rhs.shape[-1]
        qy = 2 * math.pi * torch.fft.fftfreq(hh, d=self.pixel_size_um, device=x.device)
        qx = 2 * math.pi * torch.fft.fftfreq(ww, d=self.pixel_size_um, device=x.device)
        q2 = qy.view(-1, 1) ** 2 + qx.view(1, -1) ** 2
        q_min = 2 * math.pi / (max(hh, ww) * self.pixel_size_um)
        alpha = self.regularization * q_min**4
        inverse = -q2 / (q2 * q2 + alpha + 1e-30)
        inverse[0, 0] = 0.0
        phi = torch.fft.ifft2(torch.fft.fft2(rhs) * inverse).real[..., :h, :w]
        return phi - phi.mean(dim=(2, 3), keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():
            return torch.cat([x, self.phase(x).to(x.dtype)], dim=1)
        with torch.autocast(device_type=x.device.type, enabled=False):
            phi = self.phase(x)
        return torch.cat([x, phi.to(x.dtype)], dim=1)

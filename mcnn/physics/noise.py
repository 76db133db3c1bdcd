"""The one noise model the simulators share: gain/offset, shot noise at a dose, read noise, clipping.

A simulator is ``content -> forward operator -> noise``; the noise pieces are here, once. Each piece
takes ``(B, C, H, W)`` float tensors and draws only from the ``torch.Generator`` it is given (a
piece that would add nothing draws nothing), so a noisy example is reproducible from its seed.
Per-example parameters (a dose, a gain) are floats or ``(B,)`` tensors.

Units: ``signal`` is in the simulator's units (intensity 1 = a bright pixel, or a mean-1 image);
``dose`` is the expected number of detected quanta (photons, electrons) per pixel at signal 1. Then

- ``poisson_counts(signal, dose)``: counts ~ Poisson(dose * max(signal, 0)); mean and variance are
  both ``dose * signal``.
- ``shot_noise(signal, dose)`` = counts / dose: mean ``signal``, variance ``signal / dose``
  (``gaussian=True``: the normal approximation with the same mean and variance).
- ``read_noise(x, std)``: ``x + std * N(0, 1)`` (``std`` in the units of ``x``).
- ``gain_offset(x, gain, offset)``: ``gain * x + offset`` (exposure, ambient light, dark level).
- ``clip(x, low, high)``: sensor saturation.
"""

from __future__ import annotations

import torch


def per_example(value: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor | float:
    """A float, or a ``(B,)`` tensor reshaped to broadcast over ``(B, C, H, W)`` ``like``."""
    if isinstance(value, torch.Tensor) and value.ndim == 1:
        return value.to(like.device, like.dtype).view(-1, *([1] * (like.ndim - 1)))
    return value


def _standard_normal(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """N(0, 1) of ``like``'s shape and dtype, drawn on the generator's device, moved to ``like``'s."""
    z = torch.randn(like.shape, generator=generator, dtype=like.dtype, device=generator.device)
    return z.to(like.device)


def poisson_counts(
    signal: torch.Tensor, dose: float | torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Detected quanta per pixel, ``Poisson(dose * max(signal, 0))``, as float counts."""
    rate = signal.clamp_min(0) * per_example(dose, signal)
    counts = torch.poisson(rate.to(generator.device), generator=generator)
    return counts.to(signal.device)


def shot_noise(
    signal: torch.Tensor,
    dose: float | torch.Tensor,
    generator: torch.Generator,
    *,
    gaussian: bool = False,
) -> torch.Tensor:
    """Signal after counting ``dose`` quanta per unit: mean ``signal``, variance ``signal / dose``.

    ``gaussian=True`` uses ``signal + sqrt(max(signal, 0) / dose) * N(0, 1)`` (continuous values;
    the normal approximation of Poisson, good above ~20 quanta per pixel).
    """
    d = per_example(dose, signal)
    if gaussian:
        return signal + torch.sqrt(signal.clamp_min(0) / d) * _standard_normal(signal, generator)
    return poisson_counts(signal, dose, generator) / d


def read_noise(
    x: torch.Tensor, std: float | torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """``x + std * N(0, 1)``; a float ``std`` of 0 returns ``x`` and draws nothing."""
    if not isinstance(std, torch.Tensor) and std == 0:
        return x
    return x + per_example(std, x) * _standard_normal(x, generator)


def gain_offset(
    x: torch.Tensor, gain: float | torch.Tensor = 1.0, offset: float | torch.Tensor = 0.0
) -> torch.Tensor:
    """``gain * x + offset``; ``gain`` per example (float or ``(B,)``), ``offset`` broadcastable."""
    g = torch.as_tensor(gain, dtype=x.dtype, device=x.device)
    return x * g.reshape(-1, *([1] * (x.ndim - 1))) + offset


def clip(x: torch.Tensor, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """Saturation: values outside ``[low, high]`` are set to the nearest bound."""
    return x.clamp(low, high)

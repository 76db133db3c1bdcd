"""Forward models (simulators) that make training pairs, and the ground truth they start from.

Layout: ``(B, C, H, W)`` float32, row-major. Every random draw comes from a ``torch.Generator``.

Names are loaded on first use (PEP 562), so ``import mcnn.physics.config`` loads the configs only,
never a simulator implementation.
"""

from __future__ import annotations

from mcnn.utils.lazy import lazy_exports

_HOMES = {
    "ContentSource": "base",
    "ParameterSampler": "base",
    "Simulator": "base",
    "BUNDLED_NAMES": "config",
    "BundledContentConfig": "config",
    "ContentConfig": "config",
    "DefocusConfig": "config",
    "FolderContentConfig": "config",
    "LaplacianConfig": "config",
    "PlaneSpacingConfig": "config",
    "ProceduralContentConfig": "config",
    "ScreenRigConfig": "config",
    "SimulatorConfig": "config",
    "StemConfig": "config",
    "build_content": "build",
    "build_simulator": "build",
    "DefocusJitter": "defocus",
    "DefocusSeriesSimulator": "defocus",
    "BundledImages": "images",
    "FolderImages": "images",
    "LaplacianPhaseSimulator": "laplacian",
    "ProceduralContent": "procedural",
    "ScreenRigPhysics": "screen_rig",
    "ScreenRigSimulator": "screen_rig",
    "StemAdfSimulator": "stem",
}

__all__ = sorted(_HOMES)


__getattr__, __dir__ = lazy_exports("mcnn.physics", _HOMES, globals())

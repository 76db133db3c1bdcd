"""Forward models (simulators) that make training pairs, and the ground truth they start from.

Layout: ``(B, C, H, W)`` float32, row-major. Every random draw comes from a ``torch.Generator``.
"""

from mcnn.physics.base import ContentSource, ParameterSampler, Simulator
from mcnn.physics.config import SimulatorConfig, build_simulator
from mcnn.physics.content import (
    BundledContentConfig,
    ContentConfig,
    FolderContentConfig,
    ProceduralContentConfig,
    build_content,
)
from mcnn.physics.defocus import DefocusConfig, DefocusJitter, DefocusSeriesSimulator
from mcnn.physics.images import BundledImages, FolderImages
from mcnn.physics.laplacian import LaplacianConfig, LaplacianPhaseSimulator
from mcnn.physics.procedural import ProceduralContent
from mcnn.physics.screen_rig import ScreenRigConfig, ScreenRigPhysics, ScreenRigSimulator
from mcnn.physics.stem import StemAdfSimulator, StemConfig

__all__ = [
    "BundledContentConfig",
    "BundledImages",
    "ContentConfig",
    "ContentSource",
    "DefocusConfig",
    "DefocusJitter",
    "DefocusSeriesSimulator",
    "FolderContentConfig",
    "FolderImages",
    "LaplacianConfig",
    "LaplacianPhaseSimulator",
    "ParameterSampler",
    "ProceduralContent",
    "ProceduralContentConfig",
    "ScreenRigConfig",
    "ScreenRigPhysics",
    "ScreenRigSimulator",
    "Simulator",
    "SimulatorConfig",
    "StemAdfSimulator",
    "StemConfig",
    "build_content",
    "build_simulator",
]

"""One validated config per simulator, picked by ``name``, and ``build_simulator``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mcnn.physics.base import Simulator
from mcnn.physics.defocus import DefocusConfig, DefocusSeriesSimulator
from mcnn.physics.laplacian import LaplacianConfig, LaplacianPhaseSimulator
from mcnn.physics.screen_rig import ScreenRigConfig, ScreenRigSimulator
from mcnn.physics.stem import StemAdfSimulator, StemConfig

SimulatorConfig = Annotated[
    LaplacianConfig | DefocusConfig | StemConfig | ScreenRigConfig,
    Field(discriminator="name"),
]

_SIMULATORS: dict[type, type[Simulator]] = {
    LaplacianConfig: LaplacianPhaseSimulator,
    DefocusConfig: DefocusSeriesSimulator,
    StemConfig: StemAdfSimulator,
    ScreenRigConfig: ScreenRigSimulator,
}


def build_simulator(
    cfg: LaplacianConfig | DefocusConfig | StemConfig | ScreenRigConfig,
) -> Simulator:
    """Make the simulator a config describes."""
    try:
        simulator = _SIMULATORS[type(cfg)]
    except KeyError:
        raise TypeError(f"not a simulator config: {type(cfg).__name__}") from None
    return simulator(cfg)

"""Acquisition toolkit: sources (camera, screen, file, simulated rig), the pair recorder and the
recording writer. Submodules import cv2/mss/Qt themselves; importing this package stays light.
Entry point: ``acquire.session.record``. The recording format and its training loader live in
``mcnn.data.recording``; calibration (above this layer) in ``calibration``.
"""

from acquire.frame import Frame, monotonic_s

__all__ = ["Frame", "monotonic_s"]

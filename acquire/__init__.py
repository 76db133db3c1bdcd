"""Acquisition toolkit: sources (camera, screen, file, simulated rig), the pair recorder, the
recording format and its training loader. Submodules import cv2/mss/Qt themselves; importing this
package stays light. Entry points: ``acquire.session.record``, ``acquire.dataset.load_pair_datasets``.
"""

from acquire.frame import Frame, monotonic_s

__all__ = ["Frame", "monotonic_s"]

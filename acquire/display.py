"""Displays the recorder and the calibration draw on: a full-screen Qt window, or a VirtualScreen.

``show(image)`` returns the monotonic time at which the image was handed to the display server
(after the paint and event flush); the measured display-to-camera latency covers the rest.
Qt objects live on the thread that created them: call ``show`` from that thread only.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Protocol, runtime_checkable

import numpy as np

from acquire.frame import monotonic_s
from acquire.sources.base import SourceError

logger = logging.getLogger(__name__)


@runtime_checkable
class Display(Protocol):
    size_hw: tuple[int, int]
    """``(height, width)`` of the shown area."""

    def show(self, image: np.ndarray) -> float: ...

    def close(self) -> None: ...


def _forget_cv2_qt_plugins() -> None:
    """opencv-python points Qt at its own, older plugins when imported; PySide6 needs its own."""
    path = os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", "")
    if "cv2" in path:
        del os.environ["QT_QPA_PLATFORM_PLUGIN_PATH"]


class QtStimulusWindow:
    """A frameless window covering Qt screen ``screen_index`` (0 = first), painting one RGB image."""

    def __init__(self, screen_index: int = 0, geometry: tuple[int, int, int, int] | None = None):
        from acquire.sources.screen import check_display

        if os.environ.get("QT_QPA_PLATFORM", "") not in ("", "xcb") or not os.environ.get(
            "DISPLAY"
        ):
            check_display()
        _forget_cv2_qt_plugins()
        from PySide6.QtCore import Qt
        from PySide6.QtGui import QImage, QPainter
        from PySide6.QtWidgets import QApplication, QWidget

        self._QImage = QImage
        self.app = QApplication.instance() or QApplication([])
        screens = self.app.screens()
        if not 0 <= screen_index < len(screens):
            raise SourceError(f"Qt screen {screen_index} does not exist ({len(screens)} screens)")
        rect = screens[screen_index].geometry()
        box = geometry or (rect.x(), rect.y(), rect.width(), rect.height())
        self.size_hw = (box[3], box[2])
        self._qimage: Any = None
        self._buffer: np.ndarray | None = None

        class _Canvas(QWidget):
            def paintEvent(inner, _event: Any) -> None:
                if self._qimage is not None:
                    painter = QPainter(inner)
                    painter.drawImage(inner.rect(), self._qimage)
                    painter.end()

        self.widget = _Canvas()
        self.widget.setWindowFlags(Qt.WindowType.FramelessWindowHint
                                   | Qt.WindowType.WindowStaysOnTopHint)
        self.widget.setCursor(Qt.CursorShape.BlankCursor)
        self.widget.setGeometry(*box)
        self.widget.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.widget.show()
        self.widget.raise_()
        self._wait_exposed(timeout_s=5.0)

    def _wait_exposed(self, timeout_s: float) -> None:
        """Mapping a window is asynchronous in X11: painting before it is exposed shows nothing,
        so the first stimulus would be recorded as shown while the screen still showed the desktop."""
        deadline = monotonic_s() + timeout_s
        handle = self.widget.windowHandle()
        while monotonic_s() < deadline:
            self.app.processEvents()
            if handle is not None and handle.isExposed():
                break
            time.sleep(0.005)
        else:
            logger.warning("stimulus window not exposed after %.1f s", timeout_s)
        for _ in range(3):
            self.app.processEvents()

    def show(self, image: np.ndarray) -> float:
        import cv2

        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.shape[:2] != self.size_hw:
            h, w = self.size_hw
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        self._buffer = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
        h, w = self._buffer.shape[:2]
        self._qimage = self._QImage(self._buffer.data, w, h, 3 * w, self._QImage.Format.Format_RGB888)
        self.widget.repaint()
        self.app.processEvents()
        return monotonic_s()

    def pump(self) -> None:
        """Let Qt handle pending events (call while waiting between stimuli)."""
        self.app.processEvents()

    def close(self) -> None:
        self.widget.close()
        self.app.processEvents()

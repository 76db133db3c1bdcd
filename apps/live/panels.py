"""Qt side of the live viewers: image panels, a window that polls the pipeline, screenshots.

pyqtgraph in row-major order; each panel is a ``ViewBox`` with an ``ImageItem`` whose levels are
fixed (no per-frame autoscale). A ``QTimer`` on the GUI thread polls
:meth:`apps.live.pipeline.LivePipeline.take`; worker threads never touch Qt objects.
:func:`grab_panel` renders one panel to an ``(H, W, 3)`` uint8 array, which is how the tests check
what a viewer shows, and how ``--screenshot`` writes a PNG.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from apps.live.pipeline import LivePipeline, LiveResult

logger = logging.getLogger(__name__)


def qt_app() -> QtWidgets.QApplication:
    """The application object, with row-major images (one axis order: (H, W))."""
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
    return pg.mkQApp()


def qimage_to_array(image: QtGui.QImage) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB copy of a QImage."""
    image = image.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    buf = np.frombuffer(image.constBits(), np.uint8, count=h * stride)
    return buf.reshape(h, stride)[:, : 3 * w].reshape(h, w, 3).copy()


def widget_to_array(widget: QtWidgets.QWidget) -> np.ndarray:
    """Render ``widget`` (shown or not) to ``(H, W, 3)`` uint8."""
    return qimage_to_array(widget.grab().toImage())


class PanelGrid(pg.GraphicsLayoutWidget):
    """Named image panels in a grid; ``set_image`` keeps each panel's levels fixed."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("k")
        self.views: dict[str, pg.ViewBox] = {}
        self.items: dict[str, pg.ImageItem] = {}
        self.titles: dict[str, pg.LabelItem] = {}
        self.levels: dict[str, tuple[float, float]] = {}

    def add_panel(self, name: str, title: str, row: int, col: int,
                  levels: tuple[float, float] = (0.0, 1.0)) -> pg.ImageItem:
        self.titles[name] = self.addLabel(title, row=2 * row, col=col)
        view = self.addViewBox(row=2 * row + 1, col=col, lockAspect=True, invertY=True,
                               enableMenu=False)
        item = pg.ImageItem(axisOrder="row-major")
        view.addItem(item)
        self.views[name], self.items[name], self.levels[name] = view, item, levels
        return item

    def link(self, *names: str) -> None:
        """Zoom and pan of these panels move together: same centre, same data units per screen
        pixel. (pyqtgraph's X/Y links copy whole ranges; between aspect-locked views of unequal
        widths each copy forces another aspect fix and the ranges grow without end.)"""
        views = [self.views[n] for n in names]
        busy = [False]

        def follower(source: pg.ViewBox) -> Callable[..., None]:
            def follow(*_: object) -> None:
                if busy[0] or source.width() <= 0:
                    return
                busy[0] = True
                try:
                    (x0, x1), (y0, y1) = source.viewRange()
                    per_px = (x1 - x0) / source.width()
                    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
                    for view in views:
                        if view is not source and view.width() > 0:
                            hw, hh = per_px * view.width() / 2, per_px * view.height() / 2
                            view.setRange(xRange=(cx - hw, cx + hw), yRange=(cy - hh, cy + hh),
                                          padding=0.0)
                finally:
                    busy[0] = False
            return follow

        for view in views:
            view.sigRangeChanged.connect(follower(view))

    def set_levels(self, name: str, levels: tuple[float, float]) -> None:
        self.levels[name] = (float(levels[0]), float(levels[1]))
        self.items[name].setLevels(self.levels[name])

    def set_image(self, name: str, image: np.ndarray) -> None:
        item = self.items[name]
        first = item.image is None or item.image.shape[:2] != image.shape[:2]
        item.setImage(image, autoLevels=False, levels=self.levels[name])
        if first:
            self.views[name].autoRange(padding=0.0)

    def set_title(self, name: str, text: str) -> None:
        self.titles[name].setText(text)

    def panel_rect(self, name: str) -> QtCore.QRect:
        """Where panel ``name``'s image is drawn, in this widget's pixels."""
        item = self.items[name]
        rect = self.mapFromScene(item.sceneBoundingRect()).boundingRect()
        return rect.intersected(self.viewport().rect())


def grab_panel(grid: PanelGrid, name: str) -> np.ndarray:
    """``(H, W, 3)`` uint8 of what panel ``name`` shows on screen right now."""
    QtWidgets.QApplication.processEvents()
    rect = grid.panel_rect(name)
    full = qimage_to_array(grid.grab().toImage())
    ratio = full.shape[1] / max(1, grid.width())
    x0, y0 = int(rect.x() * ratio), int(rect.y() * ratio)
    x1, y1 = int((rect.x() + rect.width()) * ratio), int((rect.y() + rect.height()) * ratio)
    return full[max(0, y0):y1, max(0, x0):x1]


class LiveWindow(QtWidgets.QWidget):
    """A grid of panels, a row of controls and a stats line, fed by a :class:`LivePipeline`.

    ``show_result(result)`` (the viewer's) puts a result into the panels; the window stamps it as
    displayed right after. Closing the window stops the pipeline and closes its sources.
    ``max_frames`` closes the window after that many displayed frames (tests, screenshots).
    """

    def __init__(self, pipeline: LivePipeline, show_result: Callable[[LiveResult], None], *,
                 title: str, poll_ms: int = 2, max_frames: int | None = None) -> None:
        super().__init__()
        self.setWindowTitle(title)
        self.pipeline, self.show_result, self.max_frames = pipeline, show_result, max_frames
        self.grid = PanelGrid(self)
        self.controls = QtWidgets.QHBoxLayout()
        self.stats_label = QtWidgets.QLabel("starting...")
        self.stats_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.grid, stretch=1)
        layout.addLayout(self.controls)
        layout.addWidget(self.stats_label)
        self.shown = 0
        self.last_result: LiveResult | None = None
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(poll_ms)
        self.timer.timeout.connect(self._poll)
        self._stats_every = 0

    def add_button(self, text: str, on_click: Callable[[], Any], checkable: bool = False
                   ) -> QtWidgets.QPushButton:
        button = QtWidgets.QPushButton(text)
        button.setCheckable(checkable)
        button.clicked.connect(lambda *_: on_click())
        self.controls.addWidget(button)
        return button

    def start(self) -> None:
        self.pipeline.start()
        self.timer.start()

    def _poll(self) -> None:
        result = self.pipeline.take()
        if result is None:
            if self.pipeline.done and self.pipeline.error:
                self.stats_label.setText(f"stopped: {self.pipeline.error}")
            if self.pipeline.done and self.max_frames is not None:
                self.close()
            return
        self.show_result(result)
        latency = self.pipeline.displayed(result)
        self.last_result = result
        self.shown += 1
        self._stats_every += 1
        # Every frame until the rate has settled (a slow CPU shows a handful per minute), then
        # every fifth; one displayed frame has no rate yet ("--", not a false 0.0).
        if self._stats_every >= 5 or self.shown <= 5:
            self._stats_every = 0
            extra = "  ".join(f"{k} {v:.3g}" for k, v in result.processed.values.items())
            rate = f"{self.pipeline.fps():5.1f}" if self.shown > 1 else "   --"
            self.stats_label.setText(
                f"{rate} fps   inference {result.processed.inference_ms:6.1f} ms"
                f"   latency {latency:6.1f} ms   {extra}")
        if self.max_frames is not None and self.shown >= self.max_frames:
            self.close()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self.timer.stop()
        self.pipeline.stop()
        super().closeEvent(event)


def run_window(window: LiveWindow, *, screenshot: Path | None = None,
               size_wh: tuple[int, int] = (1200, 700)) -> int:
    """Show ``window`` and run the event loop until it closes (or SIGINT/SIGTERM).

    ``screenshot`` saves the window as PNG just before it closes.
    """
    app = qt_app()
    window.resize(*size_wh)

    def quit_now(*_: object) -> None:
        window.close()

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, quit_now)
    # Python runs signal handlers only between bytecodes: the poll timer gives it that chance.
    if screenshot is not None:
        original_close = window.closeEvent

        def close_with_screenshot(event: QtGui.QCloseEvent) -> None:
            if window.last_result is not None:
                save_screenshot(window, screenshot)
            original_close(event)

        window.closeEvent = close_with_screenshot  # type: ignore[method-assign]
    window.show()
    window.start()
    try:
        app.exec()
    finally:
        window.pipeline.stop()
        for s, h in previous.items():
            signal.signal(s, h)
    return 0


def save_screenshot(widget: QtWidgets.QWidget, path: Path) -> Path:
    """The widget as rendered now, as PNG (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    QtWidgets.QApplication.processEvents()
    if not widget.grab().save(str(path), "PNG"):
        raise OSError(f"could not write screenshot {path}")
    return path

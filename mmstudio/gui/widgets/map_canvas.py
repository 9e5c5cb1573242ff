"""The map canvas: every point of a layout, drawn as one image per frame.

numpy rasterises the points in view into one ARGB image (mmstudio.maps.raster), and
the canvas blits it: a frame costs one pass over the visible points and one texture's
worth of painting, however many points there are (1,000,000 pan and zoom at tens of
frames per second on a laptop CPU; see `make bench`, map). Pan by dragging, zoom with
the wheel at the cursor, lasso with Shift+drag (or in lasso mode), Home to see all.
Overlays (the current item, the query, the hover card, the legend) are painted with
QPainter on top.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import QWidget

from mmstudio.maps.colours import NONE_HEX, Colouring, viridis
from mmstudio.maps.geometry import PointSet, View
from mmstudio.maps.raster import auto_radius, render

BACKGROUND = QColor("#1b1d21")
PICK_PX = 8  # how near the cursor a point must be to hover or click it
CLICK_SLOP_PX = 4  # a press that moves less than this is a click, not a drag
ZOOM_STEP = 1.0015  # per wheel-delta unit (120 per notch: about x1.2)
MAX_ZOOM = 20_000  # times the scale that shows everything
LASSO_MIN_PX = 3  # lasso vertices closer than this to the last one are skipped
FRAMES_KEPT = 120
_RAMP = viridis(np.linspace(0, 1, 64))  # the legend of value modes


def emphasis_radius(shown: int) -> int:
    """Disc radius of emphasised points (search results, a selection) over the faded
    rest: a size bigger than the map's own, while the discs' pixels stay near a million
    (a disc of radius 2 is 21 pixels, of 1 is 9); a larger set stands out by colour."""
    if shown <= 50_000:
        return max(auto_radius(shown), 2)
    return 1 if shown <= 110_000 else 0


class MapCanvas(QWidget):
    clicked = Signal(int)  # item id of the point clicked
    hovered = Signal(object)  # item id under the cursor, or None
    lasso_drawn = Signal(object)  # (M, 2) world polygon
    cleared = Signal()  # Escape: drop the selection
    menu_requested = Signal(QPoint)  # a right click, in global coordinates

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(200, 140)
        self.points: PointSet | None = None
        self.view = View(0.0, 0.0, 1.0, max(self.width(), 1), max(self.height(), 1))
        self.lasso_mode = False
        self.frame_ms: deque[float] = deque(maxlen=FRAMES_KEPT)  # render + paint times
        self.placeholder = "No map yet."
        self._colours: np.ndarray | None = None  # (N,) uint32 ARGB, point order
        self._faded: np.ndarray | None = None
        self._emphasis: np.ndarray | None = None  # point rows drawn on top, full colour
        self._current: int | None = None  # point row of the item shown in the preview
        self._query: tuple[float, float] | None = None
        self._colouring: Colouring | None = None
        self._hover_row: int | None = None
        self._hover_card: tuple[QImage | None, str] | None = None
        self._hover_pos = QPointF()
        self._frame: np.ndarray | None = None  # the last rendered image (kept for QImage)
        self._dirty = True
        self._press: QPointF | None = None
        self._last_drag: QPointF | None = None
        self._dragging = False
        self._lasso: list[QPointF] = []
        self._fit_scale = 1.0

    # -- what to draw -------------------------------------------------------------------

    def set_points(self, points: PointSet | None, *, keep_view: bool = False) -> None:
        self.points = points
        self._colours = self._faded = None
        self._emphasis = None
        self._current = self._hover_row = None
        self._hover_card = None
        self._query = None
        if points is not None and len(points) and not keep_view:
            self.fit()
        self._redraw()

    def set_colours(self, colours: np.ndarray, faded: np.ndarray,
                    colouring: Colouring | None = None) -> None:
        """(N,) ARGB32 per point (point order), and the same faded for the background."""
        self._colours, self._faded, self._colouring = colours, faded, colouring
        self._redraw()

    def set_emphasis(self, rows: np.ndarray | None) -> None:
        """Point rows drawn on top in full colour, the rest faded (None: all full)."""
        self._emphasis = None if rows is None else np.asarray(rows, np.int64)
        self._redraw()

    def set_current(self, row: int | None) -> None:
        self._current = row
        self.update()

    def set_query(self, xy: tuple[float, float] | None) -> None:
        self._query = xy
        self.update()

    def set_hover_card(self, image: QImage | None, text: str) -> None:
        self._hover_card = (image, text) if self._hover_row is not None else None
        self.update()

    @property
    def hover_row(self) -> int | None:
        return self._hover_row

    # -- the view -----------------------------------------------------------------------

    def fit(self) -> None:
        if self.points is None or not len(self.points):
            return
        self.view = View.fit(self.points.bounds(), max(self.width(), 1), max(self.height(), 1))
        self._fit_scale = self.view.scale
        self._redraw()

    def pan(self, dx: float, dy: float) -> None:
        self.view = self.view.panned(dx, dy)
        self._redraw()

    def zoom(self, factor: float, at: QPointF | None = None) -> None:
        at = at if at is not None else QPointF(self.width() / 2, self.height() / 2)
        lo, hi = self._fit_scale / 4, self._fit_scale * MAX_ZOOM
        factor = float(np.clip(self.view.scale * factor, lo, hi) / self.view.scale)
        self.view = self.view.zoomed(factor, at.x(), at.y())
        self._redraw()

    def _redraw(self) -> None:
        self._dirty = True
        self.update()

    # -- painting -----------------------------------------------------------------------

    def _render(self) -> None:
        view, points = self.view, self.points
        if points is None or self._colours is None or not len(points):
            self._frame = None
            return
        if self._emphasis is None:
            frame = render(points, self._colours, view)
        else:
            frame = render(points, self._faded, view)
            shown = len(self._emphasis)
            render(points, self._colours, view, rows=self._emphasis, out=frame,
                   radius=emphasis_radius(shown))
        self._frame = frame
        self._dirty = False

    def paintEvent(self, event) -> None:
        started = time.perf_counter()
        if self._dirty:
            self._render()
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        if self._frame is None:
            painter.setPen(QColor("#c8cbd0"))
            painter.drawText(self.rect().adjusted(24, 24, -24, -24),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self.placeholder)
        else:
            h, w = self._frame.shape
            image = QImage(self._frame.data, w, h, w * 4, QImage.Format.Format_ARGB32)
            painter.drawImage(0, 0, image)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            self._paint_marks(painter)
            self._paint_legend(painter)
            if self._lasso:
                self._paint_lasso(painter)
            if self._hover_card is not None and self._hover_row is not None:
                self._paint_card(painter)
        painter.end()
        self.frame_ms.append((time.perf_counter() - started) * 1000)

    def _screen(self, row: int) -> QPointF:
        px, py = self.view.to_screen(self.points.x[row], self.points.y[row])
        return QPointF(float(px), float(py))

    def _paint_marks(self, painter: QPainter) -> None:
        if self._current is not None and self.points is not None and \
                0 <= self._current < len(self.points):
            at = self._screen(self._current)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(QColor("white"), 2))
            painter.drawEllipse(at, 7, 7)
            painter.setPen(QPen(QColor("black"), 1))
            painter.drawEllipse(at, 9, 9)
        if self._query is not None:
            px, py = self.view.to_screen(*self._query)
            star = _star(QPointF(float(px), float(py)), 11, 4.5)
            painter.setPen(QPen(QColor("black"), 1.5))
            painter.setBrush(QColor("#ffd43b"))
            painter.drawPolygon(star)

    def _paint_legend(self, painter: QPainter) -> None:
        c = self._colouring
        if c is None:
            return
        font = QFont(self.font())
        font.setPixelSize(12)
        painter.setFont(font)
        rows = [(cat.colour, f"{cat.name}  {cat.count:,}") for cat in c.categories[:14]]
        height = 22 + 18 * (len(rows) if rows else 3)
        box = QRectF(10, 10, 190, height)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(20, 22, 26, 200))
        painter.drawRoundedRect(box, 6, 6)
        painter.setPen(QColor("#e8eaed"))
        painter.drawText(box.adjusted(10, 4, -6, 0), Qt.AlignmentFlag.AlignTop, c.title)
        if rows:
            for k, (colour, text) in enumerate(rows):
                y = box.top() + 24 + 18 * k
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(QColor(colour))
                painter.drawEllipse(QPointF(box.left() + 16, y + 6), 5, 5)
                painter.setPen(QColor("#e8eaed"))
                painter.drawText(QPointF(box.left() + 28, y + 11), text)
            return
        ramp = _RAMP
        bar = QRectF(box.left() + 10, box.top() + 26, box.width() - 20, 10)
        for k, (r, g, b) in enumerate(ramp):
            painter.fillRect(QRectF(bar.left() + bar.width() * k / 64, bar.top(),
                                    bar.width() / 64 + 0.5, bar.height()), QColor(r, g, b))
        lo, hi = c.value_range
        painter.drawText(QPointF(bar.left(), bar.bottom() + 14), f"{lo:.2f}")
        painter.drawText(QRectF(bar.left(), bar.bottom() + 2, bar.width(), 14),
                         Qt.AlignmentFlag.AlignRight, f"{hi:.2f}")
        if c.missing:
            painter.setPen(QColor(NONE_HEX))
            painter.drawText(QPointF(bar.left(), bar.bottom() + 30), f"{c.missing:,} without one")

    def _paint_lasso(self, painter: QPainter) -> None:
        path = QPainterPath(self._lasso[0])
        for p in self._lasso[1:]:
            path.lineTo(p)
        painter.setBrush(QColor(255, 255, 255, 28))
        painter.setPen(QPen(QColor("white"), 1.5, Qt.PenStyle.DashLine))
        painter.drawPath(path)

    def _paint_card(self, painter: QPainter) -> None:
        image, text = self._hover_card
        width = max(image.width() if image else 0, 160) + 12
        height = (image.height() if image else 0) + 30
        x = self._hover_pos.x() + 16
        y = self._hover_pos.y() + 16
        if x + width > self.width():
            x = self._hover_pos.x() - 16 - width
        if y + height > self.height():
            y = max(self._hover_pos.y() - 16 - height, 0)
        card = QRectF(x, y, width, height)
        painter.setPen(QPen(QColor("#5f6368"), 1))
        painter.setBrush(QColor(32, 34, 38, 235))
        painter.drawRoundedRect(card, 6, 6)
        if image is not None:
            painter.drawImage(QPointF(x + 6, y + 6), image)
        painter.setPen(QColor("#e8eaed"))
        metrics = painter.fontMetrics()
        painter.drawText(QRectF(x + 6, card.bottom() - 22, width - 12, 18),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         metrics.elidedText(text, Qt.TextElideMode.ElideMiddle, int(width - 12)))

    # -- input --------------------------------------------------------------------------

    def _world(self, pos: QPointF) -> tuple[float, float]:
        wx, wy = self.view.to_world(pos.x(), pos.y())
        return float(wx), float(wy)

    def row_at(self, pos: QPointF) -> int | None:
        if self.points is None or not len(self.points):
            return None
        wx, wy = self._world(pos)
        return self.points.nearest(wx, wy, PICK_PX / self.view.scale)

    def resizeEvent(self, event) -> None:
        fitted = self.points is not None and abs(self.view.scale - self._fit_scale) < 1e-12
        self.view = self.view.resized(max(self.width(), 1), max(self.height(), 1))
        if fitted and self.points is not None and len(self.points):
            self.fit()
        self._redraw()

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position()
            self._dragging = False
            lasso = self.lasso_mode or event.modifiers() & Qt.KeyboardModifier.ShiftModifier
            self._lasso = [event.position()] if lasso else []
        elif event.button() == Qt.MouseButton.RightButton:
            self.menu_requested.emit(event.globalPosition().toPoint())

    def mouseMoveEvent(self, event) -> None:
        pos = event.position()
        if self._press is not None:
            if not self._dragging and (pos - self._press).manhattanLength() >= CLICK_SLOP_PX:
                self._dragging = True
            if self._lasso:
                if (pos - self._lasso[-1]).manhattanLength() >= LASSO_MIN_PX:
                    self._lasso.append(pos)
                    self.update()
            elif self._dragging:
                last = self._last_drag or self._press
                self.pan(pos.x() - last.x(), pos.y() - last.y())
                self._last_drag = pos
            return
        self._hover(pos)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self._press is None:
            return
        pos = event.position()
        if self._lasso and self._dragging and len(self._lasso) >= 3:
            polygon = np.array([self._world(p) for p in self._lasso], np.float64)
            self.lasso_drawn.emit(polygon)
        elif not self._dragging:
            row = self.row_at(pos)
            if row is not None:
                self.clicked.emit(int(self.points.ids[row]))
        self._press = None
        self._dragging = False
        self._lasso = []
        self._last_drag = None
        self.update()

    def _hover(self, pos: QPointF) -> None:
        self._hover_pos = pos
        row = self.row_at(pos)
        if row != self._hover_row:
            self._hover_row = row
            self._hover_card = None
            self.hovered.emit(None if row is None else int(self.points.ids[row]))
            self.update()
        elif self._hover_card is not None:
            self.update()  # the card follows the cursor

    def leaveEvent(self, event) -> None:
        if self._hover_row is not None:
            self._hover_row = None
            self._hover_card = None
            self.hovered.emit(None)
            self.update()

    def wheelEvent(self, event) -> None:
        delta = event.angleDelta().y()
        if delta:
            self.zoom(ZOOM_STEP ** delta, event.position())

    def keyPressEvent(self, event) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Home, Qt.Key.Key_0):
            self.fit()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom(1.25)
        elif key == Qt.Key.Key_Minus:
            self.zoom(0.8)
        elif key == Qt.Key.Key_Escape:
            self.cleared.emit()
        else:
            super().keyPressEvent(event)


def _star(centre: QPointF, outer: float, inner: float) -> QPolygonF:
    angles = np.pi / 2 + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, outer, inner)
    return QPolygonF([QPointF(centre.x() + r * np.cos(a), centre.y() - r * np.sin(a))
                      for r, a in zip(radii, angles, strict=True)])

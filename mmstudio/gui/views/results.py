"""The results grid: one delegate paints every card; thumbnails come from a worker.

Only the cards in view (and one screen ahead) ask for thumbnails, so a search with
thousands of results costs what one screen costs. The thumbnail job decodes files
and loads the cached pictures into QImages on a pool thread; the GUI thread only
paints them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QModelIndex, QPoint, QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette, QPen
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QStyledItemDelegate

from mmstudio.core.errors import MediaError
from mmstudio.core.search import SearchResult
from mmstudio.core.thumbnails import thumbnails
from mmstudio.gui.models.results import ResultRole, ResultsModel, ThumbRole
from mmstudio.gui.style import modality_colour, moment_text, paint_modality_badge
from mmstudio.gui.workers import TaskSlot

log = logging.getLogger(__name__)

FOOTER = 40  # name and score under the picture
PAD = 6


def load_thumbnails(keys, cache_dir, size, *, progress, cancel):
    """A job: (key, QImage | snippet | MediaError) per (path, moment), made or cached."""
    for path, moment, made in thumbnails(keys, cache_dir, size, progress=progress, cancel=cancel):
        key = (str(path), moment)
        if isinstance(made, MediaError):
            yield key, made
        elif made.path is None:
            yield key, made.snippet or ""
        else:  # QImage is safe to build off the GUI thread (QPixmap is not)
            image = QImage(str(made.path))
            yield key, image if not image.isNull() else MediaError(path, "thumbnail unreadable")


class ResultDelegate(QStyledItemDelegate):
    def __init__(self, thumb_size: int, parent=None) -> None:
        super().__init__(parent)
        self.thumb_size = thumb_size

    def sizeHint(self, option, index) -> QSize:
        return QSize(self.thumb_size + 2 * PAD, self.thumb_size + FOOTER + 2 * PAD)

    def paint(self, painter: QPainter, option, index: QModelIndex) -> None:
        result: SearchResult | None = index.data(ResultRole)
        if result is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        card = QRectF(option.rect).adjusted(2, 2, -2, -2)
        palette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.setPen(QPen(palette.color(QPalette.ColorRole.Highlight), 2) if selected
                       else QPen(palette.color(QPalette.ColorRole.Mid), 1))
        painter.setBrush(palette.color(QPalette.ColorRole.AlternateBase) if selected
                         else palette.color(QPalette.ColorRole.Base))
        painter.drawRoundedRect(card, 6, 6)

        size = self.thumb_size
        area = QRect(option.rect.x() + PAD, option.rect.y() + PAD, size, size)
        self._paint_thumb(painter, area, result, index.data(ThumbRole), palette)

        badge = moment_text(result.start, result.end) if result.modality in ("audio", "video") else ""
        if badge:
            font = QFont(painter.font())
            font.setPixelSize(11)
            painter.setFont(font)
            width = painter.fontMetrics().horizontalAdvance(badge) + 10
            box = QRectF(area.right() - width - 3, area.bottom() - 20, width, 17)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 170))
            painter.drawRoundedRect(box, 4, 4)
            painter.setPen(QColor("white"))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, badge)

        footer = QRect(area.left(), area.bottom() + 4, size, FOOTER - 6)
        paint_modality_badge(painter, QRectF(footer.left(), footer.top() + 1, 16, 16),
                             result.modality)
        font = QFont(option.font)
        font.setPixelSize(12)
        painter.setFont(font)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        name = painter.fontMetrics().elidedText(Path(result.path).name,
                                                Qt.TextElideMode.ElideMiddle, size - 22)
        painter.drawText(QRect(footer.left() + 22, footer.top(), size - 22, 18),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, name)
        painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(QRect(footer.left(), footer.top() + 18, size, 16),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                         f"score {result.score:.2f}  ·  sim {result.similarity:.2f}")
        painter.restore()

    @staticmethod
    def _paint_thumb(painter: QPainter, area: QRect, result: SearchResult, thumb, palette) -> None:
        tint = QColor(modality_colour(result.modality))
        tint.setAlpha(28)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(tint)
        painter.drawRoundedRect(QRectF(area), 4, 4)
        if isinstance(thumb, QImage):
            scaled = QSize(thumb.width(), thumb.height()).scaled(area.size(),
                                                                  Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(QPoint(0, 0), scaled)
            target.moveCenter(area.center())
            painter.drawImage(target, thumb)
        elif isinstance(thumb, str):
            font = QFont(painter.font())
            font.setPixelSize(12)
            painter.setFont(font)
            painter.setPen(palette.color(QPalette.ColorRole.Text))
            text_area = area.adjusted(8, 8, -8, -8)
            painter.drawText(text_area, Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignTop, thumb)
        else:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            message = "no preview" if isinstance(thumb, Exception) else "…"
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, message)


class ResultsView(QListView):
    """A grid of result cards. `result_activated` on Enter / double-click."""

    result_activated = Signal(object)  # SearchResult
    current_result_changed = Signal(object)  # SearchResult | None

    def __init__(self, model: ResultsModel, thumb_size: int = 160, parent=None) -> None:
        super().__init__(parent)
        self.results = model
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)  # layout of thousands of cards without measuring each
        self.setSpacing(4)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setDragEnabled(False)
        self.setWordWrap(True)
        self.delegate = ResultDelegate(thumb_size, self)
        self.setItemDelegate(self.delegate)
        self.cache_dir: Path | None = None
        self.thumb_slot = TaskSlot(self)
        self.thumb_slot.yielded.connect(self._thumbnail_arrived)
        self._pending: set = set()
        self._refresh = QTimer(self, singleShot=True, interval=60)
        self._refresh.timeout.connect(self.request_visible_thumbnails)
        self.verticalScrollBar().valueChanged.connect(lambda _: self._refresh.start())
        self.activated.connect(lambda index: self.result_activated.emit(index.data(ResultRole)))

    def setModel(self, model) -> None:
        super().setModel(model)
        model.modelReset.connect(self._refresh.start)
        model.layoutChanged.connect(self._refresh.start)
        model.rowsInserted.connect(self._refresh.start)
        self.selectionModel().currentChanged.connect(
            lambda current, _: self.current_result_changed.emit(current.data(ResultRole))
        )

    def set_thumb_size(self, size: int) -> None:
        self.delegate.thumb_size = size
        self.results.clear_thumbnails()
        self._pending.clear()
        self.scheduleDelayedItemsLayout()
        self._refresh.start()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._refresh.start()

    def visible_rows(self) -> list[int]:
        """Source rows of the cards on screen, and one screen further down."""
        model = self.model()
        if model is None or model.rowCount() == 0:
            return []
        view = self.viewport().rect()
        ahead = view.adjusted(0, 0, 0, view.height())
        first = self.indexAt(QPoint(PAD, PAD))
        start = first.row() if first.isValid() else 0
        rows = []
        for row in range(start, model.rowCount()):
            rect = self.visualRect(model.index(row, 0))
            if rect.top() > ahead.bottom():
                break
            if rect.intersects(ahead):
                source = model.mapToSource(model.index(row, 0)) if hasattr(model, "mapToSource") \
                    else model.index(row, 0)
                rows.append(source.row())
        return rows

    def request_visible_thumbnails(self) -> None:
        if self.cache_dir is None:
            return
        rows = self.visible_rows()
        keys = self.results.missing_thumbnails(rows)
        if not keys or set(keys) <= self._pending:
            return
        self._pending = set(keys)
        self.thumb_slot.start(load_thumbnails, keys, self.cache_dir, self.delegate.thumb_size,
                              title=f"Thumbnails ({len(keys)})")

    def _thumbnail_arrived(self, item) -> None:
        key, thumb = item
        self._pending.discard(key)
        self.results.set_thumbnail(key, thumb)

    def shutdown(self) -> None:
        self._refresh.stop()
        self.thumb_slot.shutdown()

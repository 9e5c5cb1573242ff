"""The jobs panel (progress bars, counts, ETA, Cancel) and the errors list."""

from __future__ import annotations

import time

from PySide6.QtCore import QModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QStyledItemDelegate,
    QTableView,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from mmstudio.gui.models.errors import ErrorsModel
from mmstudio.gui.models.jobs import JobEntry, JobsModel

CANCEL_COLUMN = 4


class ProgressDelegate(QStyledItemDelegate):
    """Column 1: the job's message, with a thin progress bar under it (text on a bar's
    fill is hard to read in most styles)."""

    def sizeHint(self, option, index: QModelIndex) -> QSize:
        return QSize(200, option.fontMetrics.height() + 14)

    def paint(self, painter, option, index: QModelIndex) -> None:
        entry: JobEntry = index.data(Qt.ItemDataRole.UserRole)
        rect = option.rect.adjusted(4, 2, -4, -2)
        painter.save()
        painter.setPen(option.palette.color(QPalette.ColorRole.Text))
        text_rect = QRect(rect.left(), rect.top(), rect.width(), rect.height() - 8)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         option.fontMetrics.elidedText(str(index.data() or ""),
                                                       Qt.TextElideMode.ElideRight, rect.width()))
        track = QRectF(rect.left(), rect.bottom() - 5, rect.width(), 5)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(option.palette.color(QPalette.ColorRole.Midlight))
        painter.drawRoundedRect(track, 2, 2)
        p = entry.progress
        if entry.state == "done":
            fraction = 1.0
        elif p.total > 0:
            fraction = min(p.done / p.total, 1.0)
        else:  # running but not counted yet: a short block sweeping along the track
            fraction = None
        colour = {"failed": QColor("#c0392b"), "cancelled": QColor("#95a5a6")}.get(
            entry.state, option.palette.color(QPalette.ColorRole.Highlight))
        painter.setBrush(colour)
        if fraction is None:
            phase = (time.monotonic() % 1.5) / 1.5
            painter.drawRoundedRect(QRectF(track.left() + phase * track.width() * 0.8, track.top(),
                                           track.width() * 0.2, track.height()), 2, 2)
        elif fraction > 0:
            painter.drawRoundedRect(QRectF(track.left(), track.top(), track.width() * fraction,
                                           track.height()), 2, 2)
        painter.restore()


class JobsPanel(QWidget):
    def __init__(self, model: JobsModel, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.view = QTreeView()
        self.view.setModel(model)
        self.view.setRootIsDecorated(False)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setItemDelegateForColumn(1, ProgressDelegate(self.view))
        header = self.view.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.resizeSection(0, 220)
        header.setStretchLastSection(False)
        for col, width in ((2, 120), (3, 80), (4, 70)):
            header.resizeSection(col, width)
        self.view.clicked.connect(self._clicked)
        self.cancel_button = QPushButton("Cancel job")
        self.cancel_button.setToolTip("Cancel the selected job, or the running one (Esc)")
        self.cancel_button.clicked.connect(self.cancel_selected)
        clear = QPushButton("Clear finished")
        clear.clicked.connect(model.clear_finished)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(clear)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.view)
        layout.addLayout(buttons)
        model.rowsInserted.connect(self._update_button)
        model.dataChanged.connect(self._update_button)
        model.modelReset.connect(self._update_button)
        self._update_button()

    def _clicked(self, index: QModelIndex) -> None:
        if index.column() == CANCEL_COLUMN:
            self.model.cancel(index.row())

    def cancel_selected(self) -> bool:
        """Cancel the selected job if it runs, else the newest running one."""
        rows = [i.row() for i in self.view.selectionModel().selectedRows()]
        running = [r for r in rows if self.model.entries[r].running] or self.model.running_rows()[:1]
        return any([self.model.cancel(r) for r in running])

    def keyPressEvent(self, event) -> None:
        if event.matches(QKeySequence.StandardKey.Cancel) or event.key() == Qt.Key.Key_Escape:
            if self.cancel_selected():
                return
        super().keyPressEvent(event)

    def _update_button(self, *_) -> None:
        self.cancel_button.setEnabled(bool(self.model.running_rows()))


class ErrorsView(QTableView):
    def __init__(self, model: ErrorsModel, parent=None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setAlternatingRowColors(True)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.verticalHeader().hide()
        self.setWordWrap(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(0, 320)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)

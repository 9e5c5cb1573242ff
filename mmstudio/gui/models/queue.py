"""A labeling session's queue as a Qt list model, and the delegate that draws its rows.

Each row is one item: its name, its labels as chips in the schema's colours, the
model's suggestion, and "saving…" while a change to it is not yet committed. The model
holds only what the GUI thread was told: labels arrive from the session's commit events,
never from the person's key press, so a row never shows a label that is not on disk.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from PySide6.QtCore import QAbstractListModel, QModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate

from mmstudio.labels.schema import Schema, SchemaError
from mmstudio.labels.store import Suggestion

ItemRole = Qt.ItemDataRole.UserRole + 1  # int
LabelsRole = Qt.ItemDataRole.UserRole + 2  # frozenset[str]
SuggestionRole = Qt.ItemDataRole.UserRole + 3  # Suggestion | None
PendingRole = Qt.ItemDataRole.UserRole + 4  # bool: a change not yet committed

NONE: frozenset[str] = frozenset()
SOURCES = {"knn": "k-NN vote", "classifier": "classifier", "zero-shot": "zero-shot"}


def source_text(source: str) -> str:
    return SOURCES.get(source, source)


def suggestion_text(s: Suggestion) -> str:
    return f"{s.label} · {s.score * 100:.0f} %"


class QueueModel(QAbstractListModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.schema: Schema | None = None
        self.items: list[int] = []
        self.names: dict[int, str] = {}
        self.labels: dict[int, frozenset[str]] = {}
        self.suggestions: dict[int, Suggestion] = {}
        self.pending: Counter[int] = Counter()
        self._rows: dict[int, int] = {}

    # -- Qt -----------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.items)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self.items):
            return None
        item = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.name(item)
        if role == ItemRole:
            return item
        if role == LabelsRole:
            return self.labels.get(item, NONE)
        if role == SuggestionRole:
            return self.suggestions.get(item)
        if role == PendingRole:
            return self.pending[item] > 0
        if role == Qt.ItemDataRole.ToolTipRole:
            parts = [self.name(item)]
            if chosen := self.labels.get(item):
                parts.append("labels: " + ", ".join(sorted(chosen)))
            if s := self.suggestions.get(item):
                parts.append(f"suggested: {suggestion_text(s)} ({source_text(s.source)})")
            return "\n".join(parts)
        return None

    # -- what the panel changes -----------------------------------------------------------

    def reset(self, schema: Schema | None, queue: Sequence[int], names: Mapping[int, str],
              labels: Mapping[int, frozenset[str]], suggestions: Mapping[int, Suggestion]
              ) -> None:
        self.beginResetModel()
        self.schema = schema
        self.names = dict(names)
        self.labels = dict(labels)
        self.suggestions = dict(suggestions)
        self.pending.clear()
        self._set_items(queue)
        self.endResetModel()

    def clear(self) -> None:
        self.reset(None, [], {}, {}, {})

    def set_queue(self, queue: Sequence[int]) -> None:
        self.beginResetModel()
        self._set_items(queue)
        self.endResetModel()

    def set_labels(self, labels: Mapping[int, frozenset[str]]) -> None:
        self.labels.update(labels)
        self._changed(labels, [LabelsRole, Qt.ItemDataRole.ToolTipRole])

    def set_suggestions(self, suggestions: Mapping[int, Suggestion]) -> None:
        self.suggestions.update(suggestions)
        self._changed(suggestions, [SuggestionRole, Qt.ItemDataRole.ToolTipRole])

    def mark_pending(self, items: Iterable[int], step: int) -> None:
        """step +1 when a write of these items is submitted, −1 when it has ended."""
        items = list(items)
        for item in items:
            self.pending[item] += step
            if self.pending[item] <= 0:
                del self.pending[item]
        self._changed(items, [PendingRole])

    # -- reading ------------------------------------------------------------------------

    def row_of(self, item: int) -> int | None:
        return self._rows.get(item)

    def name(self, item: int) -> str:
        return self.names.get(item, f"item {item}")

    @property
    def labeled(self) -> int:
        """Items of the queue with at least one label."""
        return sum(1 for i in self.items if self.labels.get(i))

    def _set_items(self, queue: Sequence[int]) -> None:
        self.items = list(queue)
        self._rows = {item: row for row, item in enumerate(self.items)}

    def _changed(self, items: Iterable[int], roles: list) -> None:
        rows = sorted(r for r in (self._rows.get(i) for i in items) if r is not None)
        if rows:  # one signal for the span: a bulk change of thousands stays one repaint
            self.dataChanged.emit(self.index(rows[0]), self.index(rows[-1]), roles)


# ---------------------------------------------------------------------------- drawing

ROW = 26
PAD = 6


class QueueDelegate(QStyledItemDelegate):
    """Name on the left, then label chips; the suggestion (or "saving…") on the right."""

    def sizeHint(self, option, index) -> QSize:
        return QSize(200, ROW)

    def paint(self, painter: QPainter, option, index: QModelIndex) -> None:
        model = index.model()
        schema = getattr(model, "schema", None)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette: QPalette = option.palette
        rect = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(rect, palette.color(QPalette.ColorRole.Highlight))
        text = palette.color(QPalette.ColorRole.HighlightedText if selected
                             else QPalette.ColorRole.Text)
        dim = QColor(text)
        dim.setAlpha(150)
        font = QFont(option.font)
        font.setPixelSize(12)
        painter.setFont(font)
        metrics = painter.fontMetrics()

        right = rect.right() - PAD
        pending = index.data(PendingRole)
        s: Suggestion | None = index.data(SuggestionRole)
        note = "saving…" if pending else (f"→ {suggestion_text(s)}" if s else "")
        if note:
            if pending:
                italic = QFont(font)
                italic.setItalic(True)
                painter.setFont(italic)
            width = painter.fontMetrics().horizontalAdvance(note)
            painter.setPen(dim)
            painter.drawText(QRect(right - width, rect.top(), width, rect.height()),
                             Qt.AlignmentFlag.AlignVCenter, note)
            painter.setFont(font)
            right -= width + 2 * PAD

        x = rect.left() + PAD
        name = metrics.elidedText(index.data(Qt.ItemDataRole.DisplayRole) or "",
                                  Qt.TextElideMode.ElideMiddle, max(40, (right - x) // 2))
        painter.setPen(text)
        painter.drawText(QRect(x, rect.top(), right - x, rect.height()),
                         Qt.AlignmentFlag.AlignVCenter, name)
        x += metrics.horizontalAdvance(name) + PAD
        for label in sorted(index.data(LabelsRole) or ()):
            width = metrics.horizontalAdvance(label) + 12
            if x + width > right:
                break
            colour = QColor(_colour(schema, label))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
            chip = QRectF(x, rect.top() + 4, width, rect.height() - 8)
            painter.drawRoundedRect(chip, 7, 7)
            painter.setPen(QColor("white") if colour.lightnessF() < 0.62 else QColor("black"))
            painter.drawText(chip, Qt.AlignmentFlag.AlignCenter, label)
            x += width + 4
        painter.restore()


def _colour(schema: Schema | None, label: str) -> str:
    try:
        return schema.colour(label) if schema is not None else "#7f8c8d"
    except SchemaError:  # a label removed from the schema since: still drawn, in grey
        return "#7f8c8d"

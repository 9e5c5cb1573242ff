"""The labeling panel's widgets: the choices above, the message page and the session page.

Layout and showing only: the panel (views/labeling.py) connects them to what they do
and tells them what to show; none of them reads the library or the session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListView,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from mmstudio.core.jobs import Progress
from mmstudio.core.search import SearchResult
from mmstudio.gui.models.queue import QueueDelegate, QueueModel, source_text
from mmstudio.gui.views.preview import PreviewPane
from mmstudio.labels.queue import ORDERS
from mmstudio.labels.schema import Schema
from mmstudio.labels.store import Suggestion

POOLS = {"library": "Whole library", "results": "Search results", "selection": "Selection"}
ORDER_NAMES = {"active": "Active learning", "similarity": "Similar to labeled",
               "random": "Random", "given": "Search order"}


class LabelingControls(QWidget):
    """Above both pages: the schema (New…, Edit…), what to label, in which order, Start."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.schema_box = QComboBox()
        self.schema_box.setMinimumContentsLength(10)
        self.new_button = QPushButton("New…")
        self.edit_button = QPushButton("Edit…")
        self.pool_box = QComboBox()
        for name in POOLS.values():
            self.pool_box.addItem(name)
        self.order_box = QComboBox()
        for order in ORDERS:
            self.order_box.addItem(ORDER_NAMES.get(order, order))
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Plan a queue of the chosen items and start labeling")
        top = QVBoxLayout(self)
        top.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Schema"))
        row.addWidget(self.schema_box, 1)
        row.addWidget(self.new_button)
        row.addWidget(self.edit_button)
        top.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(self.pool_box, 1)
        row.addWidget(self.order_box, 1)
        row.addWidget(self.start_button)
        top.addLayout(row)

    def chosen(self) -> tuple[str, str]:
        """The pool and the order chosen."""
        return list(POOLS)[self.pool_box.currentIndex()], ORDERS[self.order_box.currentIndex()]

    def choose(self, pool: str, order: str) -> None:
        self.pool_box.setCurrentIndex(list(POOLS).index(pool))
        self.order_box.setCurrentIndex(list(ORDERS).index(order))

    def set_pool_sizes(self, sizes: Mapping[str, int]) -> None:
        """Pools of a known size say it; an empty one cannot be chosen."""
        for row, (pool, name) in enumerate(POOLS.items()):
            if pool in sizes:
                n = sizes[pool]
                self.pool_box.setItemText(row, f"{name} ({n})")
                self.pool_box.model().item(row).setEnabled(n > 0)

    def set_schemas(self, names: Iterable[str], select: str | None = None) -> None:
        """List the schemas without saying that the choice changed (the caller knows)."""
        names = list(names)
        self.schema_box.blockSignals(True)
        self.schema_box.clear()
        for name in names:
            self.schema_box.addItem(name)
        if select in names:
            self.schema_box.setCurrentText(select)
        self.schema_box.blockSignals(False)
        self.edit_button.setEnabled(bool(names))


class MessagePage(QWidget):
    """What to do, or why there is nothing to label; a bar while the queue is planned."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.note = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.note.setStyleSheet("color: palette(placeholder-text); font-size: 14px;")
        self.note_button = QPushButton()
        self._action: Callable[[], object] | None = None
        self.note_button.clicked.connect(lambda: self._action and self._action())
        self.plan_bar = QProgressBar()
        lay = QVBoxLayout(self)
        lay.addStretch(1)
        lay.addWidget(self.note)
        lay.addWidget(self.note_button, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addWidget(self.plan_bar)
        lay.addStretch(2)

    def say(self, text: str, action: str = "", slot: Callable[[], object] | None = None) -> None:
        """A line, and maybe one button to act on it."""
        self.note.setText(text)
        self.note_button.setText(action)
        self.note_button.setVisible(bool(action))
        self._action = slot
        self.plan_bar.hide()

    def planning(self) -> None:
        self.plan_bar.setRange(0, 0)  # busy until the plan says how far it is
        self.plan_bar.show()

    def plan_progress(self, progress: Progress) -> None:
        self.plan_bar.setRange(0, progress.total)
        self.plan_bar.setValue(progress.done)
        if progress.message:
            self.note.setText(f"Planning the queue: {progress.message}…")


class SessionPage(QSplitter):
    """The item (or "queue done"), a button per label, the suggestion, the pace, undo and
    redo; below, the queue. Rows chosen by the person, not by `show_row`, are signalled."""

    label_chosen = Signal(str)  # a label button was clicked
    row_chosen = Signal(int)  # the person chose a row of the queue

    def __init__(self, model: QueueModel, undo_stack: QUndoStack,
                 parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)
        self._syncing = False
        self.preview = PreviewPane()
        self.preview.relevance.hide()  # no query to explain an item of a queue by
        self.done_note = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.done_note.setStyleSheet("font-size: 15px;")
        self.again_button = QPushButton("Start again")
        done = QWidget()
        lay = QVBoxLayout(done)
        lay.addStretch(1)
        lay.addWidget(self.done_note)
        lay.addWidget(self.again_button, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addStretch(1)
        self.view_stack = QStackedWidget()
        self.view_stack.addWidget(self.preview)
        self.view_stack.addWidget(done)
        self.label_grid = QGridLayout()
        self.label_grid.setSpacing(4)
        self.label_buttons: dict[str, QPushButton] = {}
        self.suggestion = QLabel()
        self.suggestion.setTextFormat(Qt.TextFormat.PlainText)
        self.progress_bar = QProgressBar(textVisible=False)
        self.progress_bar.setMaximumHeight(10)
        self.progress_text = QLabel()
        self.undo_button = QToolButton(text="Undo")
        self.redo_button = QToolButton(text="Redo")
        self.undo_button.setToolTip("Undo (Ctrl+Z)")
        self.redo_button.setToolTip("Redo (Ctrl+Shift+Z)")
        undo_stack.canUndoChanged.connect(self.undo_button.setEnabled)
        undo_stack.canRedoChanged.connect(self.redo_button.setEnabled)
        self.undo_button.setEnabled(False)
        self.redo_button.setEnabled(False)
        upper = QWidget()
        lay = QVBoxLayout(upper)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view_stack, 1)
        lay.addLayout(self.label_grid)
        lay.addWidget(self.suggestion)
        pace = QHBoxLayout()
        pace.addWidget(self.progress_text, 1)
        pace.addWidget(self.undo_button)
        pace.addWidget(self.redo_button)
        lay.addWidget(self.progress_bar)
        lay.addLayout(pace)
        self.queue_view = QListView()
        self.queue_view.setModel(model)
        self.queue_view.setItemDelegate(QueueDelegate(self.queue_view))
        self.queue_view.setUniformItemSizes(True)
        self.queue_view.selectionModel().currentChanged.connect(self._current_changed)
        self.addWidget(upper)
        self.addWidget(self.queue_view)
        self.setStretchFactor(0, 3)
        self.setStretchFactor(1, 2)
        self.setSizes([480, 240])

    def set_schema(self, schema: Schema | None) -> None:
        """A button per label of the schema, in its colour, with its key."""
        while self.label_grid.count():
            button = self.label_grid.takeAt(0).widget()
            button.hide()
            button.deleteLater()
        self.label_buttons = {}
        for n, d in enumerate(schema.labels if schema else ()):
            button = QPushButton(f"{d.key}  {d.name}" if d.key else d.name, checkable=True)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the panel
            button.setToolTip(f"Label the item {d.name}" + (f" (key {d.key})" if d.key else ""))
            button.setStyleSheet(
                f"QPushButton {{ border: 2px solid {d.colour}; border-radius: 5px; "
                f"padding: 5px 10px; }} QPushButton:checked {{ background: {d.colour}; "
                "color: white; font-weight: bold; }")
            button.clicked.connect(lambda _=False, name=d.name: self.label_chosen.emit(name))
            self.label_grid.addWidget(button, n // 4, n % 4)
            self.label_buttons[d.name] = button

    def show_row(self, row: int) -> None:
        """Make `row` the queue's current row (past the end: none), unsignalled."""
        self._syncing = True
        if row < self.queue_view.model().rowCount():
            index = self.queue_view.model().index(row, 0)
            self.queue_view.setCurrentIndex(index)
            self.queue_view.scrollTo(index)
        else:
            self.queue_view.clearSelection()
        self._syncing = False

    def show_result(self, result: SearchResult | None) -> None:
        self.view_stack.setCurrentIndex(0)
        self.preview.show_result(result)

    def show_done(self, text: str) -> None:
        self.done_note.setText(text)
        self.view_stack.setCurrentIndex(1)
        self.preview.show_result(None)

    def show_labels(self, chosen: frozenset[str], enabled: bool,
                    suggestion: Suggestion | None) -> None:
        """The current item's labels on the buttons, and its suggestion (no item: none)."""
        for name, button in self.label_buttons.items():
            button.setChecked(name in chosen)
            button.setEnabled(enabled)
        if not enabled:
            self.suggestion.setText("")
        elif suggestion is None:
            self.suggestion.setText("No suggestion yet: label a few items and the model "
                                    "will propose labels.")
        else:
            self.suggestion.setText(f"Suggested: {suggestion.label} · "
                                    f"{suggestion.score * 100:.0f} % · "
                                    f"{source_text(suggestion.source)} — Enter to accept")

    def show_progress(self, done: int, total: int, rate: float) -> None:
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(done)
        self.progress_text.setText(f"{done} / {total} labeled · {rate:.1f} labels/min")

    def _current_changed(self, index: QModelIndex, _previous: QModelIndex) -> None:
        if not self._syncing and index.isValid():
            self.row_chosen.emit(index.row())

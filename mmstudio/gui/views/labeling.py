"""The labeling panel: one item at a time, a key per label, the model's suggestion.

Threads. Every label write goes through the core `LabelSession` on the panel's own
serial writer (one thread, jobs in the order given), so a slow disk never freezes the
window and writes land in the order the person made them. The session reports commits
on the writer thread; `_Events` carries them to the GUI thread. The person moves on at
once, but a row and the label buttons show new labels only when the commit's event
arrives ("saving…" until then): nothing is shown as done before it is on disk.
Planning the queue (`plan_queue`) runs on a TaskSlot: a new Start cancels a stale plan;
in active order the queue is re-planned every REPLAN_EVERY labels, reusing the
features read the first time.

Undo. A write's Change goes on `undo_stack` once committed; undoing and redoing it
run `session.revert` / `session.reapply` on the writer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThreadPool, QTimer, Signal, Slot
from PySide6.QtGui import QKeySequence, QShortcut, QUndoCommand, QUndoStack
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

from mmstudio.core.items import item_results, main_file
from mmstudio.core.jobs import Progress
from mmstudio.core.search import SearchResult
from mmstudio.gui.models.queue import QueueDelegate, QueueModel, source_text
from mmstudio.gui.views.preview import PreviewPane
from mmstudio.gui.widgets.schema_dialog import SchemaDialog
from mmstudio.gui.workers import Job, TaskSlot
from mmstudio.labels.queue import ORDERS, QueuePlan, plan_queue
from mmstudio.labels.schema import Schema
from mmstudio.labels.session import LabelSession
from mmstudio.labels.store import Change, Suggestion

log = logging.getLogger(__name__)

REPLAN_EVERY = 10  # labels between two re-plans of an active-learning queue
PREFETCH = 12  # items ahead whose previews are looked up in one job
POOLS = {"library": "Whole library", "results": "Search results", "selection": "Selection"}
ORDER_NAMES = {"active": "Active learning", "similarity": "Similar to labeled",
               "random": "Random", "given": "Search order"}
EMPTY_POOL = {
    "results": "There are no search results to label: search first, or label the whole library.",
    "selection": "Nothing is selected: select items in the results, or label the whole library.",
}


# ------------------------------------------------------------------ jobs (pool threads)


@dataclass(frozen=True)
class Planned:
    plan: QueuePlan
    pool: list[int]
    names: dict[int, str]
    results: dict[int, SearchResult]  # previews of the first items


def plan_session(library, schema: Schema, pool: list[int] | None, order: str, zero_shot: bool,
                 *, progress, cancel) -> Planned:
    """A job: the queue for `pool` (None: the whole library), names and first previews."""
    files = library.catalog.item_files(pool)
    pool = list(files) if pool is None else pool
    plan = plan_queue(library, schema, pool, order, zero_shot=zero_shot, progress=progress,
                      cancel=cancel)
    if plan.scores is not None:
        library.labels.set_suggestions(schema.name, plan.scores.best())
    names = {i: Path(main_file(f)[0]).name for i, f in files.items()}
    results = {r.item_id: r for r in item_results(library, plan.queue[:PREFETCH])}
    return Planned(plan, pool, names, results)


def replan(library, schema: Schema, pool: list[int], plan: QueuePlan, zero_shot: bool, *,
           progress, cancel) -> tuple[QueuePlan, dict[int, Suggestion]]:
    """A job: the active-learning queue again, with what was labeled since."""
    new = plan_queue(library, schema, pool, "active", features=plan.features,
                     zero_shot=zero_shot, progress=progress, cancel=cancel)
    best = new.scores.best() if new.scores is not None else {}
    if best:
        library.labels.set_suggestions(schema.name, best)
    return new, best


def load_items(library, item_ids: list[int], *, progress, cancel) -> dict[int, SearchResult]:
    return {r.item_id: r for r in item_results(library, item_ids)}


def _call(fn: Callable[[], object], *, progress, cancel) -> object:
    return fn()  # a writer job: one short catalog transaction, nothing to report or cancel


# ---------------------------------------------------------------- the serial writer


class _Delivery(QObject):
    """Hands one writer job's outcome to its callbacks, on the GUI thread."""

    def __init__(self, writer: Writer, job: Job, done, failed, finished) -> None:
        super().__init__(writer)  # on the GUI thread: the connections below are queued
        self.writer, self.job = writer, job
        self.done, self.failed, self.finished = done, failed, finished
        job.signals.result.connect(self.on_result)
        job.signals.failed.connect(self.on_failed)
        job.signals.finished.connect(self.on_finished)

    @Slot(object)
    def on_result(self, value: object) -> None:
        if self.done is not None:
            self.done(value)

    @Slot(str)
    def on_failed(self, message: str) -> None:
        if self.failed is not None:
            self.failed(message)

    @Slot()
    def on_finished(self) -> None:
        if self.finished is not None:
            self.finished()
        self.writer._ended(self)


class Writer(QObject):
    """One thread running the panel's catalog work in the order it was submitted."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._running: set[_Delivery] = set()
        self._spent: list[_Delivery] = []  # released on the next submit, never in their slot

    def submit(self, fn: Callable[[], object], *, done=None, failed=None, finished=None,
               title: str = "label write") -> Job:
        for delivery in self._spent:
            delivery.setParent(None)
        self._spent.clear()
        job = Job(_call, fn, title=title)
        self._running.add(_Delivery(self, job, done, failed, finished))
        self.pool.start(job.run)
        return job

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def _ended(self, delivery: _Delivery) -> None:
        self._running.discard(delivery)
        self._spent.append(delivery)

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Let every submitted job finish (a write is never dropped) and deliver."""
        deadline = time.monotonic() + timeout_ms / 1000
        while self._running and time.monotonic() < deadline:
            self.pool.waitForDone(20)
            QCoreApplication.processEvents()
        return not self._running


class _Events(QObject):
    """A session's events, (session, value), carried from the writer to the GUI thread."""

    event = Signal(str, object)


class LabelChange(QUndoCommand):
    """A committed change: its first redo is the commit itself, later ones reapply it."""

    def __init__(self, panel: LabelingPanel, change: Change, text: str) -> None:
        super().__init__(text)
        self.panel, self.change = panel, change
        self._committed = True

    def redo(self) -> None:
        if self._committed:
            self._committed = False
            return
        self.panel._replay(self.change, undo=False)

    def undo(self) -> None:
        self.panel._replay(self.change, undo=True)


# ----------------------------------------------------------------------- the panel


class LabelingPanel(QWidget):
    message = Signal(str)  # a line for the status bar

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.library = None
        self.schemas: dict[str, Schema] = {}
        self._schema: Schema | None = None
        self._session: LabelSession | None = None
        self._plan: QueuePlan | None = None
        self._pool: list[int] = []
        self._pool_name, self._order = "library", "active"
        self._pools: dict[str, list[int]] = {"results": [], "selection": []}
        self._pos = 0
        self._results: dict[int, SearchResult] = {}
        self._generation = 0  # bumped whenever the session or library goes: stale callbacks drop
        self._unpushed = 0  # writes whose change is not on the undo stack yet
        self._deferred: list[Callable[[], None]] = []  # undo/redo waiting for those
        self._since_plan = 0
        self._rate = 0.0
        self._rate_asked = False
        self._syncing = False
        self.plans = 0  # re-plans applied (for tests and the log)
        self.zero_shot = True  # suggest from label names before anything is labeled
        self.dialog: SchemaDialog | None = None
        self._spent_dialogs: list[SchemaDialog] = []
        self.undo_stack = QUndoStack(self)
        self.writer = Writer(self)
        self.plan_slot = TaskSlot(self)
        self.items_slot = TaskSlot(self)
        self._events = _Events(self)
        self._events.event.connect(self._on_session_event)
        self.plan_slot.result.connect(self._on_plan)
        self.plan_slot.failed.connect(self._plan_failed)
        self.plan_slot.progress.connect(self._plan_progress)
        self.items_slot.result.connect(self._items_loaded)
        self.model = QueueModel(self)
        self._timer = QTimer(self, interval=1000)
        self._timer.timeout.connect(self._ask_rate)
        self._build()
        self._shortcuts()
        self.set_library(None)

    # -- public -------------------------------------------------------------------------

    @property
    def schema(self) -> Schema | None:
        return self._schema

    @property
    def session(self) -> LabelSession | None:
        return self._session

    @property
    def current_item(self) -> int | None:
        items = self.model.items
        return items[self._pos] if self._session is not None and self._pos < len(items) else None

    def set_library(self, library) -> None:
        """Follow another library; None: it is closing, so stop every job and clear."""
        self._stop_session()
        if self.dialog is not None:
            self.dialog.reject()
        self.plan_slot.shutdown()
        self.items_slot.shutdown()
        self.writer.wait()  # writes in flight finish: the library must not close under them
        self.library = library
        self.preview.set_library(library)
        self.schemas, self._schema = {}, None
        self._fill_schemas()
        self._top.setEnabled(library is not None)
        if library is None:
            self._say("Open a library to label its items.")
            return
        self._say("Reading the label schemas…")
        self._submit(library.labels.schemas, done=self._schemas_loaded, title="read schemas")

    def set_pools(self, results: list[int], selection: list[int]) -> None:
        self._pools = {"results": list(results), "selection": list(selection)}
        for row, (pool, name) in enumerate(POOLS.items()):
            if pool in self._pools:
                n = len(self._pools[pool])
                self.pool_box.setItemText(row, f"{name} ({n})")
                self.pool_box.model().item(row).setEnabled(n > 0)

    def start(self, pool: str = "library", order: str = "active") -> None:
        if pool not in POOLS or order not in ORDERS:
            raise ValueError(f"pool {pool!r} / order {order!r}")
        self.pool_box.setCurrentIndex(list(POOLS).index(pool))
        self.order_box.setCurrentIndex(list(ORDERS).index(order))
        if self.library is None:
            return
        if self._schema is None:
            self._say("Create a label schema to start labeling.", "New…", self.new_schema)
            return
        ids = None if pool == "library" else list(self._pools[pool])
        self._stop_session()
        if ids is not None and not ids:
            self._say(EMPTY_POOL[pool], "Start", self._start_chosen)
            return
        self._pool_name, self._order = pool, order
        self._say("Planning the queue…")
        self.plan_bar.setRange(0, 0)
        self.plan_bar.show()
        self.plan_slot.start(plan_session, self.library, self._schema, ids, order,
                             self.zero_shot, title="plan the labeling queue")

    def bulk(self, item_ids: Sequence[int], label: str) -> None:
        """One label on many items (the results grid's choice), as one undoable change."""
        schema, library, session = self._schema, self.library, self._session
        if schema is None or library is None:
            self.message.emit("Choose a label schema before labeling items.")
            return
        if label not in schema.names:
            self.message.emit(f"{label!r} is not a label of {schema.name}.")
            return
        ids = list(dict.fromkeys(int(i) for i in item_ids))
        if not ids:
            return
        if session is not None:
            write = lambda: session.bulk(ids, label, "set")  # noqa: E731
        else:  # no session running: straight to the store, still journaled and undoable
            write = lambda: library.labels.apply_label(schema.name, ids, label, "set",  # noqa: E731
                                                       session="labeling-panel")
        self._write(ids, write, f"{label} on {len(ids)} items")

    def shutdown(self) -> None:
        self.set_library(None)
        self.preview.shutdown()

    # -- building -----------------------------------------------------------------------

    def _build(self) -> None:
        self.schema_box = QComboBox()
        self.schema_box.setMinimumContentsLength(10)
        self.schema_box.currentIndexChanged.connect(lambda _: self._schema_chosen())
        self.new_button = QPushButton("New…", clicked=self.new_schema)
        self.edit_button = QPushButton("Edit…", clicked=self.edit_schema)
        self.pool_box = QComboBox()
        for name in POOLS.values():
            self.pool_box.addItem(name)
        self.order_box = QComboBox()
        for order in ORDERS:
            self.order_box.addItem(ORDER_NAMES.get(order, order))
        self.start_button = QPushButton("Start", clicked=self._start_chosen)
        self.start_button.setToolTip("Plan a queue of the chosen items and start labeling")
        self._top = QWidget()
        top = QVBoxLayout(self._top)
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

        # page "message": what to do, or why there is nothing to label
        self.note = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.note.setStyleSheet("color: palette(placeholder-text); font-size: 14px;")
        self.note_button = QPushButton()
        self._note_action: Callable[[], object] | None = None
        self.note_button.clicked.connect(lambda: self._note_action and self._note_action())
        self.plan_bar = QProgressBar()
        message = QWidget()
        lay = QVBoxLayout(message)
        lay.addStretch(1)
        lay.addWidget(self.note)
        lay.addWidget(self.note_button, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addWidget(self.plan_bar)
        lay.addStretch(2)

        # page "session"
        self.preview = PreviewPane()
        self.preview.relevance.hide()  # no query to explain an item of a queue by
        self.done_note = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.done_note.setStyleSheet("font-size: 15px;")
        again = QPushButton("Start again", clicked=lambda: self.start(self._pool_name, self._order))
        done = QWidget()
        lay = QVBoxLayout(done)
        lay.addStretch(1)
        lay.addWidget(self.done_note)
        lay.addWidget(again, 0, Qt.AlignmentFlag.AlignHCenter)
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
        self.undo_button = QToolButton(text="Undo", clicked=self.undo)
        self.redo_button = QToolButton(text="Redo", clicked=self.redo)
        self.undo_button.setToolTip("Undo (Ctrl+Z)")
        self.redo_button.setToolTip("Redo (Ctrl+Shift+Z)")
        self.undo_stack.canUndoChanged.connect(self.undo_button.setEnabled)
        self.undo_stack.canRedoChanged.connect(self.redo_button.setEnabled)
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
        self.queue_view.setModel(self.model)
        self.queue_view.setItemDelegate(QueueDelegate(self.queue_view))
        self.queue_view.setUniformItemSizes(True)
        self.queue_view.selectionModel().currentChanged.connect(self._row_chosen)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(upper)
        split.addWidget(self.queue_view)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([480, 240])

        self.pages = QStackedWidget()
        self.pages.addWidget(message)
        self.pages.addWidget(split)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self._top)
        layout.addWidget(self.pages, 1)

    def _shortcuts(self) -> None:
        def key(sequence, slot) -> None:
            QShortcut(QKeySequence(sequence), self, slot,
                      context=Qt.ShortcutContext.WidgetWithChildrenShortcut)

        keypad = Qt.KeyboardModifier.KeypadModifier
        for n in range(1, 10):
            digit = getattr(Qt.Key, f"Key_{n}")
            key(digit, lambda k=str(n): self.assign_key(k))
            key(QKeySequence(keypad | digit), lambda k=str(n): self.assign_key(k))
        for sequence in (Qt.Key.Key_Return, Qt.Key.Key_Enter, keypad | Qt.Key.Key_Enter):
            key(sequence, self.accept)
        for sequence in (Qt.Key.Key_Left, Qt.Key.Key_Backspace):
            key(sequence, lambda: self.go(self._pos - 1))
        key(Qt.Key.Key_Right, lambda: self.go(self._pos + 1))
        key(Qt.Key.Key_Delete, self.clear_current)
        key("Ctrl+Z", self.undo)
        key("Ctrl+Shift+Z", self.redo)
        key("Ctrl+Y", self.redo)
        key(Qt.Key.Key_Space, self.preview.toggle_playback)  # as in the main preview

    def _say(self, text: str, action: str = "", slot: Callable[[], object] | None = None) -> None:
        """Show the message page: a line, and maybe one button to act on it."""
        self.note.setText(text)
        self.note_button.setText(action)
        self.note_button.setVisible(bool(action))
        self._note_action = slot
        self.plan_bar.hide()
        self.pages.setCurrentIndex(0)

    # -- schemas ------------------------------------------------------------------------

    def _fill_schemas(self, select: str | None = None) -> None:
        self.schema_box.blockSignals(True)
        self.schema_box.clear()
        for name in self.schemas:
            self.schema_box.addItem(name)
        if select in self.schemas:
            self.schema_box.setCurrentText(select)
        self.schema_box.blockSignals(False)
        self.edit_button.setEnabled(bool(self.schemas))

    def _schemas_loaded(self, schemas: list[Schema], select: str | None = None) -> None:
        keep = select or (self._schema.name if self._schema else None)
        self.schemas = {s.name: s for s in schemas}
        self._fill_schemas(keep)
        new = self.schemas.get(self.schema_box.currentText())
        session = self._session
        if session is not None and new is not None and new.name == session.schema.name:
            self._schema = self.model.schema = new  # edited in place: the session goes on
            self._submit(lambda: setattr(session, "schema", new), title="update schema")
            self._build_buttons()
            self.queue_view.viewport().update()
            return
        self._schema_chosen()

    def _schema_chosen(self) -> None:
        self._stop_session()
        self._schema = self.schemas.get(self.schema_box.currentText())
        self._build_buttons()
        if self.library is None:
            return
        if self._schema is None:
            self._say("Create a label schema to start labeling.", "New…", self.new_schema)
        else:
            self._say(f"Choose what to label in {self._schema.name} and its order, "
                      "then press Start.", "Start", self._start_chosen)

    def new_schema(self) -> SchemaDialog | None:
        return self._open_dialog(None)

    def edit_schema(self) -> SchemaDialog | None:
        return self._open_dialog(self._schema) if self._schema is not None else None

    def _open_dialog(self, schema: Schema | None) -> SchemaDialog | None:
        if self.library is None:
            return None
        if self.dialog is not None:
            self.dialog.reject()
        for spent in self._spent_dialogs:  # released here, never from their own signal
            spent.setParent(None)
        self._spent_dialogs.clear()
        dialog = SchemaDialog(schema, self.schemas, self)
        dialog.submitted.connect(lambda s: self._save_schema(dialog, s))
        self.dialog = dialog
        dialog.finished.connect(lambda _: self._dialog_closed(dialog))
        dialog.open()
        return dialog

    def _dialog_closed(self, dialog: SchemaDialog) -> None:
        self._spent_dialogs.append(dialog)
        if self.dialog is dialog:
            self.dialog = None

    def _save_schema(self, dialog: SchemaDialog, schema: Schema) -> None:
        store = self.library.labels

        def save() -> list[Schema]:
            store.save_schema(schema)
            return store.schemas()

        def saved(schemas: list[Schema]) -> None:
            dialog.finish()
            self._schemas_loaded(schemas, schema.name)
            self.message.emit(f"Label schema {schema.name} saved.")

        self._submit(save, done=saved, failed=dialog.show_error, title="save schema")

    def _build_buttons(self) -> None:
        while self.label_grid.count():
            button = self.label_grid.takeAt(0).widget()
            button.hide()
            button.deleteLater()
        self.label_buttons = {}
        for n, d in enumerate(self._schema.labels if self._schema else ()):
            button = QPushButton(f"{d.key}  {d.name}" if d.key else d.name, checkable=True)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the panel
            button.setToolTip(f"Label the item {d.name}" + (f" (key {d.key})" if d.key else ""))
            button.setStyleSheet(
                f"QPushButton {{ border: 2px solid {d.colour}; border-radius: 5px; "
                f"padding: 5px 10px; }} QPushButton:checked {{ background: {d.colour}; "
                "color: white; font-weight: bold; }")
            button.clicked.connect(lambda _=False, name=d.name: self.assign(name))
            self.label_grid.addWidget(button, n // 4, n % 4)
            self.label_buttons[d.name] = button
        self._refresh_item()

    # -- planning -----------------------------------------------------------------------

    def _start_chosen(self) -> None:
        self.start(list(POOLS)[self.pool_box.currentIndex()], ORDERS[self.order_box.currentIndex()])

    def _plan_progress(self, progress: Progress) -> None:
        if self._session is None and progress.total > 0:
            self.plan_bar.setRange(0, progress.total)
            self.plan_bar.setValue(progress.done)
            if progress.message:
                self.note.setText(f"Planning the queue: {progress.message}…")

    def _plan_failed(self, message: str) -> None:
        self.message.emit(f"Planning the labeling queue failed: {message}")
        if self._session is None:
            self._say(message, "Start", self._start_chosen)

    def _on_plan(self, value: object) -> None:
        if isinstance(value, Planned):
            self._planned(value)
        else:
            self._replanned(*value)

    def _planned(self, planned: Planned) -> None:
        """Open the session on the writer: after any write still going, so it reads them."""
        store, schema, events = self.library.labels, self._schema, self._events

        def open_session() -> tuple:
            session = LabelSession(store, schema, planned.plan.queue)
            session.subscribe(lambda event, value: events.event.emit(event, (session, value)))
            return session, dict(session.labels), dict(session.suggestions)

        self._submit(open_session, done=lambda opened: self._opened(planned, *opened),
                     title="open labeling session")

    def _opened(self, planned: Planned, session: LabelSession, labels, suggestions) -> None:
        self._session, self._plan, self._pool = session, planned.plan, planned.pool
        self._results = dict(planned.results)
        self._since_plan = 0
        self._rate = 0.0
        self.model.reset(self._schema, session.queue, planned.names, labels, suggestions)
        self.pages.setCurrentIndex(1)
        self._timer.start()
        self.go(0)
        self.queue_view.setFocus()
        self.message.emit(f"Labeling {len(session.queue)} items: keys 1–9 label, "
                          "Enter takes the suggestion, ← → move, Ctrl+Z undoes.")

    def _replan(self) -> None:
        self._since_plan = 0
        self.progress_text.setText(self.progress_text.text() + " · re-planning…")
        self.plan_slot.start(replan, self.library, self._schema, list(self._pool), self._plan,
                             self.zero_shot, title="re-plan the labeling queue")

    def _replanned(self, plan: QueuePlan, best: dict[int, Suggestion]) -> None:
        session, current = self._session, self.current_item
        if session is None:
            return
        self._plan = plan

        def apply() -> None:  # the item shown stays current, whatever the new order
            if current in session.queue:
                session.go(session.queue.index(current))
            session.set_queue(plan.queue)
            if best:
                session.set_suggestions(best)

        def applied(_: object) -> None:
            self.model.set_suggestions(best)
            self.plans += 1
            self._refresh_item()
            self._refresh_progress()

        self._submit(apply, done=applied, title="new queue order")

    # -- moving -------------------------------------------------------------------------

    def go(self, index: int) -> None:
        if self._session is None:
            return
        n = len(self.model.items)
        self._pos = max(0, min(int(index), n))
        self._syncing = True
        if self._pos < n:
            row = self.model.index(self._pos)
            self.queue_view.setCurrentIndex(row)
            self.queue_view.scrollTo(row)
        else:
            self.queue_view.clearSelection()
        self._syncing = False
        item = self.current_item
        if item is None:
            labeled = self.model.labeled
            self.done_note.setText(f"Queue done: all {n} items seen, {labeled} labeled.\n"
                                   "Start again to plan a new queue, or ← to go back.")
            self.view_stack.setCurrentIndex(1)
            self.preview.show_result(None)
            self.message.emit(f"Labeling queue done: {labeled} / {n} labeled.")
        else:
            self.view_stack.setCurrentIndex(0)
            self.preview.show_result(self._results.get(item))
            self._prefetch()
        self._refresh_item()
        self._refresh_progress()

    def _row_chosen(self, index, _previous) -> None:
        if not self._syncing and index.isValid() and index.row() != self._pos:
            self.go(index.row())

    def _prefetch(self) -> None:
        window = self.model.items[self._pos : self._pos + PREFETCH]
        missing = [i for i in window if i not in self._results]
        if missing and (missing[0] == window[0] or not self.items_slot.busy):
            self.items_slot.start(load_items, self.library, missing, title="preview items")

    def _items_loaded(self, results: dict[int, SearchResult]) -> None:
        self._results.update(results)
        item = self.current_item
        if item in results and self.preview.result is None:
            self.preview.show_result(results[item])

    # -- labeling -----------------------------------------------------------------------

    def assign_key(self, key: str) -> None:
        d = self._schema.by_key(key) if self._schema is not None else None
        if d is not None:
            self.assign(d.name)

    def assign(self, label: str) -> None:
        """Label the current item: single-label sets it and moves on, multi toggles it."""
        session, item = self._session, self.current_item
        if session is None or item is None:
            self._refresh_item()
            return
        multi = self._schema.multi
        mode = "toggle" if multi else "set"
        self._write([item], lambda: session.bulk([item], label, mode),
                    f"{label} on {self.model.name(item)}")
        if multi:
            self._refresh_item()  # a clicked button shows the committed state, not its own
        else:
            self.go(self._pos + 1)

    def accept(self) -> None:
        """Take the current item's suggestion."""
        session, item = self._session, self.current_item
        if session is None or item is None:
            return
        s = self.model.suggestions.get(item)
        if s is None:
            self.message.emit("No suggestion for this item yet: label a few items first.")
            return
        multi = self._schema.multi
        if multi and s.label in self.model.labels.get(item, ()):
            self.go(self._pos + 1)
            return
        self._write([item], lambda: session.bulk([item], s.label, "add" if multi else "set"),
                    f"{s.label} on {self.model.name(item)} (suggested)")
        if not multi:
            self.go(self._pos + 1)

    def clear_current(self) -> None:
        session, item = self._session, self.current_item
        if session is None or item is None:
            return

        def clear() -> Change | None:
            session.go(session.queue.index(item))
            return session.clear()

        self._write([item], clear, f"clear {self.model.name(item)}")

    def undo(self) -> None:
        if self._unpushed:  # a change still being written goes on the stack first
            self._deferred.append(self.undo_stack.undo)
        else:
            self.undo_stack.undo()

    def redo(self) -> None:
        if self._unpushed:
            self._deferred.append(self.undo_stack.redo)
        else:
            self.undo_stack.redo()

    def _write(self, items: list[int], write: Callable[[], Change | None], text: str) -> None:
        """Submit a label change; on commit it goes on the undo stack."""
        self._unpushed += 1
        self.model.mark_pending(items, +1)

        def done(change: Change | None) -> None:
            if change is not None:
                self.undo_stack.push(LabelChange(self, change, text))
                self._labeled(change)

        def finished() -> None:
            self._unpushed -= 1
            self.model.mark_pending(items, -1)
            while not self._unpushed and self._deferred:
                self._deferred.pop(0)()

        self._submit(write, done=done, failed=self._write_failed, finished=finished)

    def _replay(self, change: Change, undo: bool) -> None:
        """Undo or redo a committed change (from the undo stack), on the writer."""
        session, store = self._session, self.library.labels if self.library else None
        if store is None:
            return
        if undo and len(change.items) == 1 and (row := self.model.row_of(change.items[0])) is not None:
            self.go(row)  # back to the item whose label is being taken back
        if session is not None:
            fn = session.revert if undo else session.reapply
        else:
            fn = store.revert if undo else store.reapply
        items = list(change.items)
        self.model.mark_pending(items, +1)
        self._submit(lambda: fn(change.id), failed=self._write_failed,
                     finished=lambda: self.model.mark_pending(items, -1),
                     title="undo label" if undo else "redo label")

    def _write_failed(self, message: str) -> None:
        self.message.emit(f"Label not saved: {message}")

    def _labeled(self, change: Change) -> None:
        self._since_plan += sum(1 for labels in change.after.values() if labels)
        if (self._order == "active" and self._since_plan >= REPLAN_EVERY
                and self._plan is not None and not self.plan_slot.busy):
            self._replan()

    # -- what the session says ------------------------------------------------------------

    @Slot(str, object)
    def _on_session_event(self, event: str, payload: object) -> None:
        session, value = payload
        if session is not self._session:
            return  # a session already closed
        if event == "labels":
            change: Change = value
            self.model.set_labels(change.after if change.state == "done" else change.before)
            if self.current_item in change.items:
                self._refresh_item()
            self._refresh_progress()
        elif event == "queue":
            current = self.current_item
            self.model.set_queue(value)
            row = self.model.row_of(current) if current is not None else None
            self.go(row if row is not None else self._pos)
        # "position": the panel owns the position; "suggestions": applied with the queue

    def _ask_rate(self) -> None:
        session = self._session
        if session is None or self._rate_asked:
            return
        self._rate_asked = True

        def got(rate: float) -> None:
            self._rate = rate
            self._refresh_progress()

        # read on the writer: the session's lock is held while a write reaches the disk
        self._submit(lambda: session.labels_per_minute, done=got,
                     finished=lambda: setattr(self, "_rate_asked", False), title="pace")

    # -- showing ------------------------------------------------------------------------

    def _refresh_item(self) -> None:
        item = self.current_item
        chosen = self.model.labels.get(item, frozenset()) if item is not None else frozenset()
        for name, button in self.label_buttons.items():
            button.setChecked(name in chosen)
            button.setEnabled(item is not None)
        s = self.model.suggestions.get(item) if item is not None else None
        if item is None:
            self.suggestion.setText("")
        elif s is None:
            self.suggestion.setText("No suggestion yet: label a few items and the model "
                                    "will propose labels.")
        else:
            self.suggestion.setText(f"Suggested: {s.label} · {s.score * 100:.0f} % · "
                                    f"{source_text(s.source)} — Enter to accept")

    def _refresh_progress(self) -> None:
        done, total = self.model.labeled, len(self.model.items)
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(done)
        self.progress_text.setText(f"{done} / {total} labeled · {self._rate:.1f} labels/min")

    # -- plumbing -----------------------------------------------------------------------

    def _submit(self, fn: Callable[[], object], *, done=None, failed=None, finished=None,
                title: str = "label write") -> Job:
        """A writer job whose callbacks are dropped once the session or library changed."""
        generation = self._generation

        def current(callback):
            if callback is None:
                return None
            return lambda *args: callback(*args) if self._generation == generation else None

        return self.writer.submit(fn, done=current(done),
                                  failed=current(failed or self.message.emit),
                                  finished=current(finished), title=title)

    def _stop_session(self) -> None:
        """Leave the session (its writes still finish, unseen) and clear what it showed."""
        self._generation += 1
        self.plan_slot.cancel()
        self.items_slot.cancel()
        self._timer.stop()
        self._session, self._plan, self._pool = None, None, []
        self._results, self._deferred = {}, []
        self._unpushed, self._since_plan, self._rate, self._rate_asked = 0, 0, 0.0, False
        self._pos = 0
        self.undo_stack.clear()
        self.model.clear()
        self.preview.show_result(None)
        self._refresh_item()
        self._refresh_progress()

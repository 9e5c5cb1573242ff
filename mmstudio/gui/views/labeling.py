"""The labeling panel: one item at a time, a key per label, the model's suggestion.

Threads. Every label write goes through the core `LabelSession` on the panel's own
serial writer (one thread, jobs in the order given: `LabelWrites`), so a slow disk never
freezes the window and writes land in the order the person made them. The session
reports commits on the writer thread; `_Events` carries them to the GUI thread. The
person moves on at once, but a row and the label buttons show new labels only when the
commit's event arrives ("saving…" until then): nothing is shown as done before it is on
disk. Planning the queue (`plan_queue`) runs on a TaskSlot: a new Start cancels a stale
plan; in active order the queue is re-planned every REPLAN_EVERY labels, reusing the
features read the first time.

Undo. A write's Change goes on `undo_stack` once committed; undoing and redoing it
run `session.revert` / `session.reapply` on the writer (views/labeling_writes.py).
The widgets are in views/labeling_parts.py, the jobs in views/labeling_jobs.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QStackedWidget, QVBoxLayout, QWidget

from mmstudio.core.jobs import Progress
from mmstudio.core.search import SearchResult
from mmstudio.gui.models.queue import QueueModel
from mmstudio.gui.views.labeling_jobs import PREFETCH, Planned, load_items, plan_session, replan
from mmstudio.gui.views.labeling_parts import (
    ORDER_NAMES,
    POOLS,
    LabelingControls,
    MessagePage,
    SessionPage,
)
from mmstudio.gui.views.labeling_writes import LabelChange, LabelWrites
from mmstudio.gui.widgets.schema_dialog import SchemaDialog
from mmstudio.gui.workers import TaskSlot
from mmstudio.labels.queue import ORDERS, QueuePlan
from mmstudio.labels.schema import Schema
from mmstudio.labels.session import LabelSession
from mmstudio.labels.store import Change, Suggestion

log = logging.getLogger(__name__)

# some moved to labeling_parts / labeling_writes / labeling_jobs, still importable from here
__all__ = ["EMPTY_POOL", "ORDER_NAMES", "POOLS", "PREFETCH", "REPLAN_EVERY",
           "LabelChange", "LabelingPanel", "Planned", "load_items", "plan_session", "replan"]

REPLAN_EVERY = 10  # labels between two re-plans of an active-learning queue
EMPTY_POOL = {
    "results": "There are no search results to label: search first, or label the whole library.",
    "selection": "Nothing is selected: select items in the results, or label the whole library.",
}


class _Events(QObject):
    """A session's events, (session, value), carried from the writer to the GUI thread."""

    event = Signal(str, object)


# ----------------------------------------------------------------------- the panel


class LabelingPanel(QWidget):
    message = Signal(str)  # a line for the status bar
    labels_changed = Signal()  # a label write, undo or redo ended (the map recolours)

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
        self._since_plan = 0
        self._rate = 0.0
        self._rate_asked = False
        self.plans = 0  # re-plans applied (for tests and the log)
        self.zero_shot = True  # suggest from label names before anything is labeled
        self.dialog: SchemaDialog | None = None
        self._spent_dialogs: list[SchemaDialog] = []
        self.model = QueueModel(self)
        # the serial writer; its callbacks are dropped once the session or library changed
        self._writes = LabelWrites(self.model, self._replay_target, self)
        self._writes.message.connect(self.message)
        self._writes.changed.connect(self.labels_changed)
        self._writes.committed.connect(self._labeled)
        self.writer = self._writes.queue
        self.undo_stack = self._writes.undo_stack
        self.plan_slot = TaskSlot(self)
        self.items_slot = TaskSlot(self)
        self._events = _Events(self)
        self._events.event.connect(self._on_session_event)
        self.plan_slot.result.connect(self._on_plan)
        self.plan_slot.failed.connect(self._plan_failed)
        self.plan_slot.progress.connect(self._plan_progress)
        self.items_slot.result.connect(self._items_loaded)
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
        self.writer.shutdown()  # writes in flight finish: the library must not close under them
        self.library = library
        self.preview.set_library(library)
        self.schemas, self._schema = {}, None
        self._fill_schemas()
        self._top.setEnabled(library is not None)
        if library is None:
            self._say("Open a library to label its items.")
            return
        self._say("Reading the label schemas…")
        self._writes.submit(library.labels.schemas, done=self._schemas_loaded,
                            title="read schemas")

    def set_pools(self, results: list[int], selection: list[int]) -> None:
        self._pools = {"results": list(results), "selection": list(selection)}
        self._top.set_pool_sizes({pool: len(ids) for pool, ids in self._pools.items()})

    def start(self, pool: str = "library", order: str = "active") -> None:
        if pool not in POOLS or order not in ORDERS:
            raise ValueError(f"pool {pool!r} / order {order!r}")
        self._top.choose(pool, order)
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
        self._notice.planning()
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
        self._writes.write(ids, write, f"{label} on {len(ids)} items")

    def shutdown(self) -> None:
        self.set_library(None)
        self.preview.shutdown()

    # -- building -----------------------------------------------------------------------

    def _build(self) -> None:
        self._top = LabelingControls()
        self.schema_box = self._top.schema_box
        self.schema_box.currentIndexChanged.connect(lambda _: self._schema_chosen())
        self._top.new_button.clicked.connect(self.new_schema)
        self._top.edit_button.clicked.connect(self.edit_schema)
        self._top.start_button.clicked.connect(self._start_chosen)
        self._notice = MessagePage()  # what to do, or why there is nothing to label
        self.note, self.note_button = self._notice.note, self._notice.note_button
        page = self._page = SessionPage(self.model, self.undo_stack)
        page.again_button.clicked.connect(lambda: self.start(self._pool_name, self._order))
        page.undo_button.clicked.connect(self.undo)
        page.redo_button.clicked.connect(self.redo)
        page.label_chosen.connect(self.assign)
        page.row_chosen.connect(self._row_chosen)
        # the parts the panel (and its tests) use, by their names before the split
        self.preview, self.queue_view = page.preview, page.queue_view
        self.done_note, self.view_stack = page.done_note, page.view_stack
        self.suggestion, self.progress_text = page.suggestion, page.progress_text
        self.pages = QStackedWidget()
        self.pages.addWidget(self._notice)
        self.pages.addWidget(page)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self._top)
        layout.addWidget(self.pages, 1)

    @property
    def label_buttons(self) -> dict:
        """The current schema's label buttons, by label name."""
        return self._page.label_buttons

    def _shortcuts(self) -> None:
        def key(sequence, slot) -> None:
            # set after construction: PySide6 ignores a `context=` keyword given with a
            # slot, and the shortcut would be window-wide (taking the grid's arrows)
            shortcut = QShortcut(QKeySequence(sequence), self, slot)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)

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
        self._notice.say(text, action, slot)
        self.pages.setCurrentIndex(0)

    # -- schemas ------------------------------------------------------------------------

    def _fill_schemas(self, select: str | None = None) -> None:
        self._top.set_schemas(self.schemas, select)

    def _schemas_loaded(self, schemas: list[Schema], select: str | None = None) -> None:
        keep = select or (self._schema.name if self._schema else None)
        self.schemas = {s.name: s for s in schemas}
        self._fill_schemas(keep)
        new = self.schemas.get(self.schema_box.currentText())
        session = self._session
        if session is not None and new is not None and new.name == session.schema.name:
            self._schema = self.model.schema = new  # edited in place: the session goes on
            self._writes.submit(lambda: setattr(session, "schema", new), title="update schema")
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

        self._writes.submit(save, done=saved, failed=dialog.show_error, title="save schema")

    def _build_buttons(self) -> None:
        self._page.set_schema(self._schema)
        self._refresh_item()

    # -- planning -----------------------------------------------------------------------

    def _start_chosen(self) -> None:
        self.start(*self._top.chosen())

    def _plan_progress(self, progress: Progress) -> None:
        if self._session is None and progress.total > 0:
            self._notice.plan_progress(progress)

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

        self._writes.submit(open_session, done=lambda opened: self._opened(planned, *opened),
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

        self._writes.submit(apply, done=applied, title="new queue order")

    # -- moving -------------------------------------------------------------------------

    def go(self, index: int) -> None:
        if self._session is None:
            return
        n = len(self.model.items)
        self._pos = max(0, min(int(index), n))
        self._page.show_row(self._pos)
        item = self.current_item
        if item is None:
            labeled = self.model.labeled
            self._page.show_done(f"Queue done: all {n} items seen, {labeled} labeled.\n"
                                 "Start again to plan a new queue, or ← to go back.")
            self.message.emit(f"Labeling queue done: {labeled} / {n} labeled.")
        else:
            self._page.show_result(self._results.get(item))
            self._prefetch()
        self._refresh_item()
        self._refresh_progress()

    def _row_chosen(self, row: int) -> None:  # the person chose a row of the queue
        if row != self._pos:
            self.go(row)

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
        self._writes.write([item], lambda: session.bulk([item], label, mode),
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
        self._writes.write([item],
                           lambda: session.bulk([item], s.label, "add" if multi else "set"),
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

        self._writes.write([item], clear, f"clear {self.model.name(item)}")

    def undo(self) -> None:
        self._writes.undo()  # after the changes still being written are on the stack

    def redo(self) -> None:
        self._writes.redo()

    def _replay_target(self, change: Change, undo: bool) -> Callable[[str], object] | None:
        """Where an undo or redo of a committed change goes: the session's journal, else
        the store's (None: no library). An undo goes back to the item it takes back."""
        session, store = self._session, self.library.labels if self.library else None
        if store is None:
            return None
        if undo and len(change.items) == 1 and (row := self.model.row_of(change.items[0])) is not None:
            self.go(row)  # back to the item whose label is being taken back
        if session is not None:
            return session.revert if undo else session.reapply
        return store.revert if undo else store.reapply

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
        self._writes.submit(lambda: session.labels_per_minute, done=got,
                            finished=lambda: setattr(self, "_rate_asked", False), title="pace")

    # -- showing ------------------------------------------------------------------------

    def _refresh_item(self) -> None:
        item = self.current_item
        chosen = self.model.labels.get(item, frozenset()) if item is not None else frozenset()
        s = self.model.suggestions.get(item) if item is not None else None
        self._page.show_labels(chosen, item is not None, s)

    def _refresh_progress(self) -> None:
        self._page.show_progress(self.model.labeled, len(self.model.items), self._rate)

    # -- plumbing -----------------------------------------------------------------------

    def _stop_session(self) -> None:
        """Leave the session (its writes still finish, unseen) and clear what it showed."""
        self._writes.reset()  # drops the callbacks of writes in flight, clears the undo stack
        self.plan_slot.cancel()
        self.items_slot.cancel()
        self._timer.stop()
        self._session, self._plan, self._pool = None, None, []
        self._results = {}
        self._since_plan, self._rate, self._rate_asked = 0, 0.0, False
        self._pos = 0
        self.model.clear()
        self.preview.show_result(None)
        self._refresh_item()
        self._refresh_progress()

"""A labeling session: a schema, a queue of items, a position, and the person's pace.

Plain Python with change events (`subscribe`), so the GUI's labeling panel, the CLI
and the tests drive the same object. Every label change goes through the library's
LabelStore, committed (durably, with its journal entry) before the session updates
itself and tells its listeners: whatever a view shows as labeled is on disk.

The session is thread-safe: the GUI runs its writes on a worker so a slow disk never
freezes the window, and listeners are called on the thread that made the change.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from mmstudio.labels.schema import Schema, SchemaError
from mmstudio.labels.store import Change, LabelStore, Suggestion

RATE_WINDOW = 300.0  # seconds of recent work the labels-per-minute figure looks at

Listener = Callable[[str, object], None]


class LabelSession:
    """Events sent to listeners as (event, value):
    "labels" (a Change, applied or undone), "position" (the new index),
    "queue" (the new queue), "suggestions" (the item ids whose suggestion changed).
    """

    def __init__(self, store: LabelStore, schema: Schema, queue: Sequence[int], *,
                 session_id: str | None = None, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.store, self.schema = store, schema
        self.id = session_id or f"session-{uuid.uuid4().hex[:12]}"
        self._lock = threading.RLock()
        self._clock = clock
        self.queue: list[int] = list(dict.fromkeys(int(i) for i in queue))
        self.position = 0
        self.labels: dict[int, frozenset[str]] = dict(store.labels(schema.name, self.queue))
        self.suggestions: dict[int, Suggestion] = store.suggestions(schema.name, self.queue)
        self._done: deque[tuple[float, int]] = deque()  # (time, items) of recent changes
        self._listeners: list[Listener] = []
        self.started = clock()

    # -- events ---------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _emit(self, event: str, value: object) -> None:
        for listener in list(self._listeners):
            listener(event, value)

    # -- where we are ----------------------------------------------------------------

    @property
    def current(self) -> int | None:
        with self._lock:
            return self.queue[self.position] if 0 <= self.position < len(self.queue) else None

    def go(self, index: int) -> None:
        with self._lock:
            self.position = max(0, min(int(index), len(self.queue)))
        self._emit("position", self.position)

    def next(self) -> None:
        self.go(self.position + 1)

    def previous(self) -> None:
        self.go(self.position - 1)

    def next_unlabeled(self) -> None:
        """The first item after the current one without a label (or the end)."""
        with self._lock:
            i = self.position + 1
            while i < len(self.queue) and self.labels.get(self.queue[i]):
                i += 1
        self.go(i)

    def set_queue(self, queue: Sequence[int]) -> None:
        """A new order (a re-plan): the current item stays current and comes first among
        the rest; items already passed keep their place before it."""
        with self._lock:
            current = self.current
            done = self.queue[: self.position]
            head = set(done) | ({current} if current is not None else set())
            rest = [int(i) for i in dict.fromkeys(queue) if int(i) not in head]
            self.queue = done + ([current] if current is not None else []) + rest
            self.labels.update(self.store.labels(self.schema.name, rest))
        self._emit("queue", list(self.queue))

    def set_suggestions(self, suggestions: dict[int, Suggestion]) -> None:
        with self._lock:
            self.suggestions.update(suggestions)
        self._emit("suggestions", list(suggestions))

    # -- progress ---------------------------------------------------------------------

    @property
    def progress(self) -> tuple[int, int]:
        """(items of the queue with a label, items in the queue)."""
        with self._lock:
            return sum(1 for i in self.queue if self.labels.get(i)), len(self.queue)

    @property
    def labels_per_minute(self) -> float:
        """Items labeled per minute over the last RATE_WINDOW seconds of work."""
        with self._lock:
            now = self._clock()
            while self._done and now - self._done[0][0] > RATE_WINDOW:
                self._done.popleft()
            if not self._done:
                return 0.0
            span = max(now - max(self.started, now - RATE_WINDOW), 10.0)
            return 60.0 * sum(n for _, n in self._done) / span

    # -- changes ------------------------------------------------------------------------

    def assign(self, label: str, *, advance: bool = True) -> Change:
        """Label the current item: a single-label schema sets it, a multi-label one
        toggles it (and stays on the item, so several can be given)."""
        item = self.current
        if item is None:
            raise SchemaError("the queue is done: no current item to label")
        mode = "toggle" if self.schema.multi else "set"
        change = self._commit(lambda cid: self.store.apply_label(
            self.schema.name, [item], label, mode, session=self.id, change_id=cid))
        if advance and not self.schema.multi:
            self.next()
        return change

    def assign_key(self, key: str) -> Change | None:
        """A key 1–9: the schema label bound to it (None if the key is free)."""
        d = self.schema.by_key(key)
        return self.assign(d.name) if d else None

    def accept(self) -> Change | None:
        """Take the current item's suggestion (None if it has none)."""
        item = self.current
        s = self.suggestions.get(item) if item is not None else None
        if s is None:
            return None
        if self.schema.multi and s.label in self.labels.get(item, frozenset()):
            self.next()
            return None
        return self.assign(s.label)

    def clear(self) -> Change | None:
        item = self.current
        if item is None or not self.labels.get(item):
            return None
        return self._commit(lambda cid: self.store.set_labels(
            self.schema.name, {item: ()}, session=self.id, change_id=cid))

    def bulk(self, items: Iterable[int], label: str, mode: str = "set") -> Change:
        """One label on many items, as one change (one undo)."""
        ids = list(items)
        return self._commit(lambda cid: self.store.apply_label(
            self.schema.name, ids, label, mode, session=self.id, change_id=cid))

    def undo(self) -> Change | None:
        with self._lock:
            change = self.store.undo(self.id)
            if change is not None:
                self._took(change, change.before, counted=-1)
        if change is not None:
            self._emit("labels", change)
            self._show(change)
        return change

    def redo(self) -> Change | None:
        with self._lock:
            change = self.store.redo(self.id)
            if change is not None:
                self._took(change, change.after)
        if change is not None:
            self._emit("labels", change)
        return change

    def revert(self, change_id: str) -> Change:
        """Undo one given change (what a QUndoCommand's undo calls)."""
        with self._lock:
            change = self.store.revert(change_id)
            self._took(change, change.before, counted=-1)
        self._emit("labels", change)
        self._show(change)
        return change

    def reapply(self, change_id: str) -> Change:
        with self._lock:
            change = self.store.reapply(change_id)
            self._took(change, change.after)
        self._emit("labels", change)
        return change

    def _commit(self, write: Callable[[str], Change]) -> Change:
        with self._lock:
            change = write(uuid.uuid4().hex)  # committed to disk when this returns
            self._took(change, change.after)
        self._emit("labels", change)
        return change

    def _took(self, change: Change, labels: dict, counted: int = 1) -> None:
        self.labels.update(labels)
        if counted > 0:
            self._done.append((self._clock(), len(labels)))
        elif self._done:
            self._done.pop()

    def _show(self, change: Change) -> None:
        """After an undo, go back to the item it concerned (if it is one item)."""
        if len(change.items) == 1 and change.items[0] in self.queue:
            self.go(self.queue.index(change.items[0]))

"""The labeling panel's writes: in order on one thread, undoable once committed.

Every job of the panel that touches the label store (a label, an undo, reading the
schemas, opening a session) goes through `LabelWrites.submit`, onto one SerialQueue, so
writes land in the order the person made them and a slow disk never freezes the window.
Callbacks of a job submitted before the last `reset` (the session or library changed)
are dropped; the job itself still runs, so no write is lost.

Undo. A label write's Change goes on `undo_stack` once committed (never before: the
stack holds only what is on disk); undoing and redoing it run the journal's revert /
reapply on the queue too. An undo asked while a write is still on its way waits for
that write's change to be on the stack first.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from mmstudio.gui.models.queue import QueueModel
from mmstudio.gui.workers import Job, SerialQueue
from mmstudio.labels.store import Change

#: where an undo (True) or redo (False) of a change goes, or None for nowhere: it takes
#: the change's id (a session's or the store's revert / reapply)
Replay = Callable[[Change, bool], Callable[[str], object] | None]


def _call(fn: Callable[[], object], *, progress, cancel) -> object:
    return fn()  # a writer job: one short catalog transaction, nothing to report or cancel


class LabelChange(QUndoCommand):
    """A committed change: its first redo is the commit itself, later ones reapply it."""

    def __init__(self, writes: LabelWrites, change: Change, text: str) -> None:
        super().__init__(text)
        self.writes, self.change = writes, change
        self._committed = True

    def redo(self) -> None:
        if self._committed:
            self._committed = False
            return
        self.writes.replay(self.change, undo=False)

    def undo(self) -> None:
        self.writes.replay(self.change, undo=True)


class LabelWrites(QObject):
    """The panel's serial writer (`queue`) and the undo stack of what it committed.

    model: the queue model whose rows say "saving…" while a change to them is on its way.
    target: for an undo or redo, the function that applies it (see `Replay`).
    """

    message = Signal(str)  # a job that failed, for the status bar
    committed = Signal(object)  # a Change now on disk and on the undo stack
    changed = Signal()  # labels on disk changed (a write, an undo or a redo ended)

    def __init__(self, model: QueueModel, target: Replay, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.queue = SerialQueue(self)
        self.undo_stack = QUndoStack(self)
        self._model, self._target = model, target
        self._generation = 0  # bumped by reset: callbacks of older jobs are dropped
        self._unpushed = 0  # writes whose change is not on the undo stack yet
        self._deferred: list[Callable[[], None]] = []  # undo/redo waiting for those

    def submit(self, fn: Callable[[], object], *, done=None, failed=None, finished=None,
               title: str = "label write") -> Job:
        """Queue `fn()`; its callbacks are dropped once `reset` was called."""
        generation = self._generation

        def current(callback):
            if callback is None:
                return None
            return lambda *args: callback(*args) if self._generation == generation else None

        return self.queue.submit(_call, fn, done=current(done),
                                 failed=current(failed or self.message.emit),
                                 finished=current(finished), title=title)

    def write(self, items: list[int], write: Callable[[], Change | None], text: str) -> None:
        """Submit a label change to `items`; on commit it goes on the undo stack."""
        self._unpushed += 1
        self._model.mark_pending(items, +1)

        def done(change: Change | None) -> None:
            if change is not None:
                self.undo_stack.push(LabelChange(self, change, text))
                self.committed.emit(change)

        def finished() -> None:
            self._unpushed -= 1
            self._model.mark_pending(items, -1)
            self.changed.emit()
            while not self._unpushed and self._deferred:
                self._deferred.pop(0)()

        self.submit(write, done=done, failed=self._write_failed, finished=finished)

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

    def replay(self, change: Change, undo: bool) -> None:
        """Undo or redo a committed change (from the undo stack), on the queue."""
        fn = self._target(change, undo)
        if fn is None:
            return
        items = list(change.items)
        self._model.mark_pending(items, +1)
        def finished() -> None:
            self._model.mark_pending(items, -1)
            self.changed.emit()

        self.submit(lambda: fn(change.id), failed=self._write_failed, finished=finished,
                    title="undo label" if undo else "redo label")

    def reset(self) -> None:
        """Forget what was submitted: its callbacks are dropped (the writes still land), the
        undo stack is cleared."""
        self._generation += 1
        self._deferred, self._unpushed = [], 0
        self.undo_stack.clear()

    def _write_failed(self, message: str) -> None:
        self.message.emit(f"Label not saved: {message}")

"""Run core jobs off the GUI thread and turn their callbacks into Qt signals.

A job is a plain core function taking `progress` and `cancel` keyword arguments
(ingest.index, search...). A job that returns a generator streams: each item it
yields arrives as `yielded` on the GUI thread, and a cancel is seen at the next item. `Job` wraps one call; the pool runs its bound
`run` method (Qt owns the runnable it makes for it, and the bound method keeps the
Job alive until `run` returns: a QRunnable subclass freed by Python while its pool
thread is still finishing crashes the process). Its signals live on a separate
QObject created on the GUI thread, so slots run there (queued connections) and
workers never touch widgets. Progress is
throttled: a job reporting thousands of files does not flood the event loop.

`TaskSlot` gives a panel one task at a time: starting a new task cancels the one
running (a new search supersedes the stale one), and results of a cancelled task are
never delivered. `shutdown()` cancels and waits, for when the panel closes.

`SerialQueue` is for work whose order matters and that must never be dropped (label
writes): jobs run one at a time, in the order submitted, on a thread of the queue's own;
each job's outcome goes to the callbacks given with it, on the GUI thread, and
`shutdown()` cancels nothing: it waits for every job submitted and delivers.
"""

from __future__ import annotations

import logging
import time
import traceback
import types
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThreadPool, Signal, Slot

from mmstudio.core.errors import Cancelled, MmstudioError
from mmstudio.core.jobs import CancelToken, Progress

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.05  # seconds between progress signals (at most ~20 per second)


class JobSignals(QObject):
    started = Signal()
    progress = Signal(object)  # Progress
    yielded = Signal(object)  # each item of a generator job
    result = Signal(object)  # what the job returned (None for a generator job)
    failed = Signal(str)  # a message for the user (the traceback goes to the log)
    cancelled = Signal()
    finished = Signal()  # always last, whatever happened


class Job:
    """One call of `fn(*args, progress=..., cancel=..., **kwargs)` on the thread pool."""

    def __init__(self, fn: Callable[..., Any], *args: Any, title: str | None = None,
                 **kwargs: Any) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.title = title or getattr(fn, "__name__", "job")  # what a jobs list shows
        self.cancel = CancelToken()
        self.signals = JobSignals()
        self._last_progress = 0.0

    def _progress(self, progress: Progress) -> None:
        if self.cancel.cancelled:
            raise Cancelled("cancelled")
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_INTERVAL or progress.done >= progress.total > 0:
            self._last_progress = now
            self.signals.progress.emit(progress)

    def run(self) -> None:  # on a pool thread
        self.signals.started.emit()
        try:
            value = self.fn(*self.args, progress=self._progress, cancel=self.cancel, **self.kwargs)
            if isinstance(value, types.GeneratorType):
                value = self._drain(value)
        except Cancelled:
            self.signals.cancelled.emit()
        except MmstudioError as exc:
            self.signals.failed.emit(str(exc))
        except Exception as exc:  # a bug: the user gets a sentence, the log the details
            log.error("job %s failed:\n%s", getattr(self.fn, "__name__", self.fn),
                      traceback.format_exc())
            self.signals.failed.emit(f"unexpected error: {exc}")
        else:
            if self.cancel.cancelled:
                self.signals.cancelled.emit()
            else:
                self.signals.result.emit(value)
        finally:
            self.signals.finished.emit()

    def _drain(self, generator: types.GeneratorType) -> None:
        try:
            for item in generator:
                if self.cancel.cancelled:
                    break
                self.signals.yielded.emit(item)
        finally:
            generator.close()


class _Relay(QObject):
    """Forwards one job's signals to its slot, on the GUI thread, if it is still current."""

    def __init__(self, slot: TaskSlot, job: Job) -> None:
        super().__init__(slot)  # lives on the slot's (GUI) thread: connections are queued
        self.slot, self.job = slot, job
        job.signals.progress.connect(self.on_progress)
        job.signals.yielded.connect(self.on_yielded)
        job.signals.result.connect(self.on_result)
        job.signals.failed.connect(self.on_failed)
        job.signals.cancelled.connect(self.on_cancelled)
        job.signals.finished.connect(self.on_finished)

    @Slot(object)
    def on_progress(self, progress: Progress) -> None:
        self.slot.job_progress.emit(self.job, progress)
        if self.slot.current is self.job:
            self.slot.progress.emit(progress)

    @Slot(object)
    def on_yielded(self, item: object) -> None:
        if self.slot.current is self.job:
            self.slot.yielded.emit(item)

    @Slot(object)
    def on_result(self, value: object) -> None:
        superseded = self.slot.current is not self.job
        self.slot.job_ended.emit(self.job, "cancelled" if superseded else "done", value)
        if not superseded:
            self.slot.result.emit(value)

    @Slot(str)
    def on_failed(self, message: str) -> None:
        self.slot.job_ended.emit(self.job, "failed", message)
        if self.slot.current is self.job:
            self.slot.failed.emit(message)

    @Slot()
    def on_cancelled(self) -> None:
        self.slot.job_ended.emit(self.job, "cancelled", None)
        self.slot.cancelled.emit()

    @Slot()
    def on_finished(self) -> None:
        self.slot._finished(self)


class TaskSlot(QObject):
    """One running task per owner (a panel); a new one cancels the previous.

    Connect to the slot's own signals, delivered on the GUI thread: progress, yielded,
    result and failed carry only the current task's (a superseded task's result never
    arrives); cancelled is sent for any of the slot's tasks that stopped on a cancel,
    and idle when none is running any more.
    """

    progress = Signal(object)
    yielded = Signal(object)
    result = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    idle = Signal()  # no task of this slot is running any more
    # every task's own progress and end, superseded ones included (for a jobs list):
    job_started = Signal(object)  # Job
    job_progress = Signal(object, object)  # Job, Progress
    job_ended = Signal(object, str, object)  # Job, "done" | "failed" | "cancelled", value

    def __init__(self, parent: QObject | None = None, pool: QThreadPool | None = None) -> None:
        super().__init__(parent)
        self.pool = pool or QThreadPool.globalInstance()
        self.current: Job | None = None
        self._relays: set[_Relay] = set()  # jobs still running
        # finished jobs' relays, released on the next start: never from inside their
        # own slot (deleting a QObject there, or queueing its deletion while the
        # owner may go away first, crashes PySide)
        self._spent: list[_Relay] = []

    def start(self, fn: Callable[..., Any], *args: Any, title: str | None = None,
              **kwargs: Any) -> Job:
        """Cancel the running task (its result will not arrive) and start this one.

        title: what the jobs panel calls it (else the function's name).
        """
        self.cancel()
        for relay in self._spent:
            relay.setParent(None)  # Python owns it now and frees it here
        self._spent.clear()
        job = Job(fn, *args, title=title, **kwargs)
        self.current = job
        self._relays.add(_Relay(self, job))
        self.job_started.emit(job)
        self.pool.start(job.run)
        return job

    def cancel(self) -> None:
        if self.current is not None:
            self.current.cancel.cancel()
            self.current = None

    @property
    def busy(self) -> bool:
        return bool(self._relays)

    def _finished(self, relay: _Relay) -> None:
        self._relays.discard(relay)
        self._spent.append(relay)
        if self.current is relay.job:
            self.current = None
        if not self._relays:
            self.idle.emit()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel everything this slot started and wait for it to stop (panel closing)."""
        for relay in list(self._relays):
            relay.job.cancel.cancel()
        self.current = None
        deadline = time.monotonic() + timeout_ms / 1000
        while self._relays and time.monotonic() < deadline:
            self.pool.waitForDone(20)
            QCoreApplication.processEvents()  # deliver `finished` so relays leave
        return not self._relays


class _Delivery(QObject):
    """Hands one queued job's outcome to its callbacks, on the GUI thread."""

    def __init__(self, queue: SerialQueue, job: Job, done: Callable[[Any], object] | None,
                 failed: Callable[[str], object] | None,
                 finished: Callable[[], object] | None) -> None:
        super().__init__(queue)  # on the GUI thread: the connections below are queued
        self.queue, self.job = queue, job
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
        self.queue._ended(self)


class SerialQueue(QObject):
    """Jobs run in the order submitted, one at a time, on one thread of the queue's own.

    Unlike a TaskSlot, a new job never cancels the ones before it: it waits for them (a
    label write must reach the disk in the order the person made it, and never be
    dropped). Each job's outcome goes to the callbacks submitted with it, on the GUI
    thread: `done(value)` or `failed(message)`, then `finished()` whatever happened (a job
    cancelled through its own token gets only `finished`; progress is not relayed).
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # one thread: the jobs run in the order queued
        self._running: set[_Delivery] = set()  # submitted and not finished
        self._spent: list[_Delivery] = []  # released on the next submit, never in their slot

    def submit(self, fn: Callable[..., Any], *args: Any,
               done: Callable[[Any], object] | None = None,
               failed: Callable[[str], object] | None = None,
               finished: Callable[[], object] | None = None,
               title: str | None = None, **kwargs: Any) -> Job:
        """Queue `fn(*args, progress=..., cancel=..., **kwargs)` after the jobs submitted.

        title: what a jobs list calls it (else the function's name).
        """
        for delivery in self._spent:
            delivery.setParent(None)  # Python owns it now and frees it here
        self._spent.clear()
        job = Job(fn, *args, title=title, **kwargs)
        self._running.add(_Delivery(self, job, done, failed, finished))
        self.pool.start(job.run)
        return job

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def _ended(self, delivery: _Delivery) -> None:
        self._running.discard(delivery)
        self._spent.append(delivery)

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Let every submitted job finish (none is cancelled) and deliver its callbacks;
        False if some were still running after `timeout_ms`. The queue can be used again."""
        deadline = time.monotonic() + timeout_ms / 1000
        while self._running and time.monotonic() < deadline:
            self.pool.waitForDone(20)
            QCoreApplication.processEvents()  # deliver `finished` so deliveries leave
        return not self._running

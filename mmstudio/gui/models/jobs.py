"""The jobs list: every background job with its progress, counts, ETA and end state."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from PySide6.QtCore import QModelIndex, QObject, Qt, QTimer, Signal

from mmstudio.core.jobs import Progress
from mmstudio.gui.models.table import FlatTableModel
from mmstudio.gui.style import duration_text
from mmstudio.gui.workers import Job, TaskSlot

TRANSIENT_LINGER_MS = 1500  # a finished quick job (thumbnails) leaves the list after this


@dataclass
class JobEntry:
    job: Job
    title: str
    transient: bool  # leaves the list when it ends well (thumbnails, not ingests)
    started: float = field(default_factory=time.monotonic)
    progress: Progress = field(default_factory=lambda: Progress(0, 0))
    state: str = "running"  # running | done | failed | cancelled
    detail: str = ""  # the summary or the failure, once it ended
    ended: float | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    def eta(self, now: float) -> float | None:
        """Seconds left at the rate so far; None until there is a rate to go by."""
        done, total = self.progress.done, self.progress.total
        elapsed = now - self.started
        if not self.running or done <= 0 or total <= done or elapsed < 1.0:
            return None
        return elapsed / done * (total - done)


class JobsModel(FlatTableModel):
    """Rows follow the jobs of the task slots it watches; newest first."""

    COLUMNS = ("Job", "Progress", "Items", "ETA", "")

    job_failed = Signal(str, str)  # title, message

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.entries: list[JobEntry] = []
        self._ticker = QTimer(self)  # ETAs move between progress signals
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._tick)

    def watch(self, slot: TaskSlot, *, transient: bool = False, summary=None) -> None:
        """Show the jobs of `slot`. summary(value) -> str describes a finished job."""
        slot.job_started.connect(lambda job: self._started(job, transient))
        slot.job_progress.connect(self._progressed)
        slot.job_ended.connect(lambda job, state, value: self._ended(job, state, value, summary))

    # -- Qt model ---------------------------------------------------------------------

    def _row_count(self) -> int:
        return len(self.entries)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        entry = self.entries[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.UserRole:
            return entry
        if role == Qt.ItemDataRole.ToolTipRole:
            return entry.detail or entry.progress.message or entry.title
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        p = entry.progress
        if col == 0:
            return entry.title
        if col == 1:  # the delegate draws the bar; this is its text
            if not entry.running:
                return entry.detail or entry.state
            # an ingest reports each file's path: its name is what fits in the row
            return os.path.basename(p.message) if os.sep in p.message else p.message
        if col == 2:
            items = f"{p.done} / {p.total}" if p.total else (str(p.done) if p.done else "")
            return f"{items}  ({p.errors} errors)" if p.errors else items
        if col == 3:
            eta = entry.eta(time.monotonic())
            return duration_text(eta) if eta is not None else ""
        if col == 4:
            return "Cancel" if entry.running else ""
        return None

    # -- actions ----------------------------------------------------------------------

    def cancel(self, row: int) -> bool:
        if 0 <= row < len(self.entries) and self.entries[row].running:
            self.entries[row].job.cancel.cancel()
            self._changed(row)
            return True
        return False

    def running_rows(self) -> list[int]:
        return [i for i, e in enumerate(self.entries) if e.running]

    def clear_finished(self) -> None:
        self.beginResetModel()
        self.entries = [e for e in self.entries if e.running]
        self.endResetModel()

    # -- slots ------------------------------------------------------------------------

    def _row_of(self, job: Job) -> int:
        for i, entry in enumerate(self.entries):
            if entry.job is job:
                return i
        return -1

    def _started(self, job: Job, transient: bool) -> None:
        self.beginInsertRows(QModelIndex(), 0, 0)
        self.entries.insert(0, JobEntry(job, job.title, transient))
        self.endInsertRows()
        self._ticker.start()

    def _progressed(self, job: Job, progress: Progress) -> None:
        row = self._row_of(job)
        if row >= 0 and self.entries[row].running:
            self.entries[row].progress = progress
            self._changed(row)

    def _ended(self, job: Job, state: str, value: object, summary) -> None:
        row = self._row_of(job)
        if row < 0:
            return
        entry = self.entries[row]
        entry.state, entry.ended = state, time.monotonic()
        if state == "failed":
            entry.detail = f"failed: {value}"
            self.job_failed.emit(entry.title, str(value))
        elif state == "cancelled":
            entry.detail = "cancelled"
        else:
            entry.detail = summary(value) if summary else "done"
        self._changed(row)
        if entry.transient and state != "failed":
            QTimer.singleShot(TRANSIENT_LINGER_MS, self, lambda j=job: self._drop(j))
        if not self.running_rows():
            self._ticker.stop()

    def _drop(self, job: Job) -> None:
        row = self._row_of(job)
        if row >= 0 and not self.entries[row].running:
            self.beginRemoveRows(QModelIndex(), row, row)
            del self.entries[row]
            self.endRemoveRows()

    def _changed(self, row: int) -> None:
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))

    def _tick(self) -> None:
        for row in self.running_rows():
            self.dataChanged.emit(self.index(row, 3), self.index(row, 3))

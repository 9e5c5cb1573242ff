"""The session: the open library, the current query, results and selection.

It is the window's one message bus: views call its methods and follow its signals,
and never talk to each other. Everything that touches files, models, the catalog or
the store runs as a core job on a task slot; the session only routes the results.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from mmstudio.core import media, microphone
from mmstudio.core.errors import MmstudioError
from mmstudio.core.ingest import IndexReport, index
from mmstudio.core.items import items_outcome
from mmstudio.core.library import Library
from mmstudio.core.search import SearchOutcome, SearchQuery, SearchResult, search_job
from mmstudio.core.warmup import load_models
from mmstudio.encoders.device import pick_device
from mmstudio.gui.workers import TaskSlot

log = logging.getLogger(__name__)

RESULT_LIMIT = 1000


# -------------------------------------------------------------- jobs (pool threads)


def open_library(path: Path, create: bool, *, progress, cancel) -> tuple[Library, dict, list]:
    library = Library(path, create=create)
    try:
        return library, library.catalog.counts(), library.catalog.errors()
    except BaseException:
        library.close()
        raise


def library_status(library: Library, *, progress, cancel) -> tuple[dict, list]:
    return library.catalog.counts(), library.catalog.errors()


def add_folders(library: Library, paths: list[Path], *, progress, cancel) -> IndexReport:
    return index(library, paths, progress=progress, cancel=cancel)


def save_pasted_image(image: QImage, folder: Path, *, progress, cancel) -> Path:
    """A pasted picture as a PNG file the search can read (named by its content)."""
    folder.mkdir(parents=True, exist_ok=True)
    bits = image.constBits()
    digest = hashlib.sha1(bytes(bits) if bits is not None else b"").hexdigest()[:12]
    path = folder / f"pasted-{digest}.png"
    if not path.exists() and not image.save(str(path), "PNG"):
        raise MmstudioError(f"could not save the pasted picture to {path}")
    return path


def unavailable_microphone(*, progress, cancel) -> str | None:
    return microphone.unavailable()


def record_query(path: Path, stop: threading.Event, *, progress, cancel) -> Path:
    return microphone.record(path, stop=stop, progress=progress, cancel=cancel)


# ------------------------------------------------------------------------ the bus


def summary_of_ingest(report: IndexReport) -> str:
    parts = [f"{report.indexed} indexed"]
    if report.unchanged:
        parts.append(f"{report.unchanged} unchanged")
    if report.removed:
        parts.append(f"{report.removed} removed")
    if report.errors:
        parts.append(f"{len(report.errors)} errors")
    return ", ".join(parts) + f" in {report.seconds:.1f} s"


class Session(QObject):
    library_changed = Signal(object)  # Library | None
    open_failed = Signal(str)
    status_changed = Signal(dict)  # counts: items, files_by_modality, ...
    models_changed = Signal(str)  # "starter on cpu"
    query_changed = Signal(object)  # (modality, label) | None
    results_changed = Signal(object)  # SearchOutcome | None
    search_failed = Signal(str)
    selection_changed = Signal(object)  # SearchResult | None
    errors_found = Signal(list, str)  # [(path, reason)], which job
    message = Signal(str)  # a line for the status bar
    microphone_checked = Signal(object)  # None, or why recording is unavailable
    recording = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.library: Library | None = None
        self.query: SearchQuery | None = None
        self.outcome: SearchOutcome | None = None
        self.selected: SearchResult | None = None
        self.counts: dict = {}
        self.result_limit = RESULT_LIMIT
        self._queue: list[Path] = []  # folders waiting for the running ingest
        self._stop_recording: threading.Event | None = None
        self._mic_check: TaskSlot | None = None
        self.open_slot = TaskSlot(self)
        self.models_slot = TaskSlot(self)
        self.ingest_slot = TaskSlot(self)
        self.status_slot = TaskSlot(self)
        self.search_slot = TaskSlot(self)
        self.query_slot = TaskSlot(self)  # pasted pictures, recordings
        self.open_slot.result.connect(self._opened)
        self.open_slot.failed.connect(self.open_failed)
        self.open_slot.job_ended.connect(self._close_superseded_open)
        self.models_slot.result.connect(self._models_loaded)
        self.models_slot.failed.connect(lambda m: self.message.emit(f"Models could not load: {m}"))
        self.ingest_slot.result.connect(self._ingested)
        self.ingest_slot.failed.connect(lambda m: self.message.emit(f"Adding folders failed: {m}"))
        self.ingest_slot.idle.connect(self._ingest_idle)
        self.status_slot.result.connect(self._status)
        self.search_slot.result.connect(self._searched)
        self.search_slot.failed.connect(self.search_failed)
        self.query_slot.result.connect(self._query_file_ready)
        self.query_slot.failed.connect(self._query_file_failed)
        self.query_slot.cancelled.connect(lambda: self.recording.emit(False))

    # -- library -----------------------------------------------------------------------

    def open_library(self, path: Path, *, create: bool = True) -> None:
        """Close the current library (its jobs stop) and open another."""
        self.close_library()
        self.message.emit(f"Opening {path}…")
        self.open_slot.start(open_library, Path(path), create, title=f"Opening {Path(path).name}")

    def close_library(self) -> None:
        for slot in (self.ingest_slot, self.search_slot, self.models_slot, self.status_slot,
                     self.query_slot):
            slot.shutdown()
        self._queue.clear()
        if self.library is not None:
            library, self.library = self.library, None
            self.set_results(None)
            # views stop the jobs they run on it (preview, explanation) before it closes
            self.library_changed.emit(None)
            library.close()

    def _opened(self, value) -> None:
        library, counts, errors = value
        self.library = library
        self.library_changed.emit(library)
        self._status((counts, errors))
        self.load_models()

    def _close_superseded_open(self, job, state, value) -> None:
        if state == "cancelled" and isinstance(value, tuple) and isinstance(value[0], Library):
            value[0].close()  # opened after the user had already asked for another

    def load_models(self) -> None:
        if self.library is not None:
            settings = self.library.settings
            self.models_changed.emit(f"{', '.join(settings.profiles)} · loading")
            self.models_slot.start(load_models, self.library, title="Loading models")

    def _models_loaded(self, names: list[str]) -> None:
        if self.library is not None:
            device = pick_device(self.library.settings.device)
            self.models_changed.emit(f"{', '.join(self.library.settings.profiles)} on {device}")
            self.message.emit("Models ready")

    def apply_settings(self, profiles: list[str], device: str) -> None:
        if self.library is None:
            return
        settings = self.library.settings
        if profiles == settings.profiles and device == settings.device:
            return
        settings.profiles, settings.device = list(profiles), device
        self.library.save_settings()
        self.load_models()
        self.message.emit("Settings saved; add folders again to encode them with new profiles")

    def refresh_status(self) -> None:
        if self.library is not None:
            self.status_slot.start(library_status, self.library, title="Counting")

    def _status(self, value) -> None:
        counts, errors = value
        self.counts = counts
        self.status_changed.emit(counts)
        self.errors_found.emit(errors, "library")

    # -- ingest ------------------------------------------------------------------------

    def add_folders(self, paths: list[Path]) -> None:
        if self.library is None:
            self.message.emit("Open or create a library first")
            return
        self._queue.extend(Path(p) for p in paths if Path(p) not in self._queue)
        if not self.ingest_slot.busy:
            self._next_ingest()

    def _next_ingest(self) -> None:
        if not self._queue or self.library is None:
            return
        paths, self._queue = self._queue, []
        names = ", ".join(p.name or str(p) for p in paths)
        self.ingest_slot.start(add_folders, self.library, paths, title=f"Adding {names}")

    def _ingested(self, report: IndexReport) -> None:
        self.errors_found.emit([(e.path, e.reason) for e in report.errors], "adding folders")
        self.message.emit(f"Added: {summary_of_ingest(report)}")

    def _ingest_idle(self) -> None:
        self.refresh_status()
        if self._queue:
            self._next_ingest()
        elif self.query is not None:
            self.search(self.query)  # the new items may belong in the results

    # -- queries -----------------------------------------------------------------------

    def search_text(self, text: str) -> None:
        self.search(SearchQuery(text=text))

    def search(self, query: SearchQuery) -> None:
        if self.library is None:
            self.message.emit("Open or create a library first")
            return
        self.query = query
        if query.text is not None:
            self.query_changed.emit(("text", query.text))
        else:
            self.query_changed.emit((media.modality_of(query.path) or "file", query.path.name))
        self.search_slot.start(search_job, self.library, query, limit=self.result_limit,
                               title="Searching")

    def show_items(self, item_ids: list[int], title: str,
                   scores: dict[int, float] | None = None) -> None:
        """Show items as the results (a confusion cell, a map selection): no query."""
        if self.library is None:
            return
        self.query = None
        self.query_changed.emit(("items", title))
        self.search_slot.start(items_outcome, self.library, list(item_ids), scores,
                               title=f"Showing {title}")

    def files_dropped(self, paths: list[Path]) -> None:
        """A dropped folder is added to the library; a dropped file becomes the query."""
        folders = [p for p in paths if p.is_dir()]
        files = [p for p in paths if p.is_file()]
        if folders:
            self.add_folders(folders)
        if files:
            if len(files) > 1:
                self.message.emit(f"Searching with {files[0].name} (one file at a time)")
            self.search(SearchQuery(path=files[0]))

    def find_similar(self, result: SearchResult | None) -> None:
        if result is not None:
            self.search(SearchQuery(path=Path(result.path)))

    def paste_image(self, image: QImage) -> None:
        if self.library is None:
            self.message.emit("Open or create a library first")
            return
        self.query_slot.start(save_pasted_image, image.copy(), self.library.path / "queries",
                              title="Pasted picture")

    def check_microphone(self) -> None:
        slot = TaskSlot(self)  # a one-off check; kept as a child until the window goes
        slot.result.connect(self.microphone_checked)
        slot.failed.connect(lambda message: self.microphone_checked.emit(message))
        slot.start(unavailable_microphone, title="Looking for a microphone")
        self._mic_check = slot

    def set_recording(self, on: bool) -> None:
        if not on:
            if self._stop_recording is not None:
                self._stop_recording.set()  # the job returns what it has
            return
        if self.library is None:
            self.message.emit("Open or create a library first")
            self.recording.emit(False)
            return
        self._stop_recording = threading.Event()
        path = self.library.path / "queries" / f"recording-{time.strftime('%Y%m%d-%H%M%S')}.wav"
        self.query_slot.start(record_query, path, self._stop_recording, title="Recording")
        self.recording.emit(True)

    def _query_file_ready(self, path: Path) -> None:
        self.recording.emit(False)
        self.search(SearchQuery(path=path))

    def _query_file_failed(self, message: str) -> None:
        self.recording.emit(False)
        self.search_failed.emit(message)

    def _searched(self, outcome: SearchOutcome) -> None:
        self.set_results(outcome)
        n = len(outcome.results)
        if outcome.query is not None:
            self.message.emit(f"{n} result{'s' * (n != 1)} in {outcome.seconds * 1000:.0f} ms")

    def set_results(self, outcome: SearchOutcome | None) -> None:
        self.outcome = outcome
        self.select(None)  # before the views pick the first result of the new ones
        self.results_changed.emit(outcome)

    def clear_query(self) -> None:
        self.search_slot.cancel()
        self.query = None
        self.query_changed.emit(None)
        self.set_results(None)

    def select(self, result: SearchResult | None) -> None:
        if result is not self.selected:
            self.selected = result
            self.selection_changed.emit(result)

    # -- shutdown ----------------------------------------------------------------------

    def shutdown(self) -> None:
        if self._stop_recording is not None:
            self._stop_recording.set()
        self.open_slot.shutdown()
        if self._mic_check is not None:
            self._mic_check.shutdown()
        self.close_library()

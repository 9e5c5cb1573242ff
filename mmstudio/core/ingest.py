"""Ingest: scan → plan → decode (thread pool) → batched encode → store → catalog.

Decoder threads stream segments into one bounded queue; the calling thread batches
them per encoder and input kind, encodes, and commits finished files: vectors go to
the store first, then the catalog marks the file indexed. Memory is bounded by the
queue and the batches, never by the size of the collection (a long video streams
through too). A file is indexed all or nothing; a job that is cancelled, interrupted
or killed leaves the files it had not finished "pending", and the next job redoes
them (see catalog.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mmstudio.core import media
from mmstudio.core.catalog import (
    MAX_SEGMENTS_PER_FILE,
    FileRecord,
    NewSegment,
    segment_id,
)
from mmstudio.core.errors import MediaError, ModelUnavailableError
from mmstudio.core.jobs import CancelToken, Progress, ProgressCallback, no_progress
from mmstudio.core.library import Library
from mmstudio.core.segments import KINDS_OF, Segment
from mmstudio.encoders.base import Encoder
from mmstudio.encoders.profiles import space_dims
from mmstudio.store.edge import StoredPoint

log = logging.getLogger(__name__)

COMMIT_EVERY_FILES = 64
COMMIT_EVERY_POINTS = 2048


@dataclass(frozen=True)
class FileError:
    path: str
    reason: str


@dataclass
class IndexReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    indexed: int = 0
    #: unchanged files encoded into spaces they did not have yet (a new profile)
    extended: int = 0
    segments: int = 0
    seconds: float = 0.0
    cancelled: bool = False
    errors: list[FileError] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class ScannedFile:
    path: Path
    modality: str
    size: int
    mtime_ns: int


def scan(roots: Iterable[Path]) -> tuple[list[ScannedFile], list[FileError]]:
    """Supported files under the roots (recursively; hidden files and folders skipped)."""
    found: dict[Path, ScannedFile] = {}
    errors: list[FileError] = []

    def add(path: Path) -> None:
        modality = media.modality_of(path)
        if modality is None:
            return
        try:
            st = path.stat()
        except OSError as exc:
            errors.append(FileError(str(path), f"cannot read: {exc.strerror or exc}"))
            return
        found[path] = ScannedFile(path, modality, st.st_size, st.st_mtime_ns)

    for root in roots:
        if root.is_file():
            add(root)
            continue
        if not root.is_dir():
            errors.append(FileError(str(root), "not found"))
            continue
        for folder, dirs, files in os.walk(root, onerror=lambda e: errors.append(
            FileError(str(e.filename), f"cannot read folder: {e.strerror}")
        )):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if not name.startswith("."):
                    add(Path(folder) / name)
    return list(found.values()), errors


def file_hash(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class _Task:
    file_id: int
    item_id: int
    path: Path
    modality: str
    #: None: index the file from scratch; else only add these spaces to its points
    only: frozenset[str] | None = None


@dataclass
class _FileState:
    task: _Task
    segments: list[NewSegment] = field(default_factory=list)
    vectors: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    pending: int = 0
    decoded: bool = False
    digest: str | None = None
    failure: str | None = None
    finished: bool = False


def index(
    library: Library,
    paths: Sequence[Path | str],
    *,
    encoders: Sequence[Encoder] | None = None,
    options: media.DecodeOptions | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    workers: int | None = None,
) -> IndexReport:
    """Bring the library up to date with the files under `paths`."""
    started = time.perf_counter()
    cancel = cancel or CancelToken()
    encoders = list(encoders) if encoders is not None else library.encoders()
    library.store.ensure_spaces(space_dims(encoders))
    options = options or media.DecodeOptions(
        frames_per_second=library.settings.frames_per_second,
        audio_rate=_audio_rate(encoders),
    )
    report = IndexReport()

    _recover_pending(library)
    roots = [Path(p).expanduser().resolve() for p in paths]
    scanned, scan_errors = scan(roots)
    report.errors.extend(scan_errors)
    present_roots = [r for r in roots if r.exists()]
    known = library.catalog.files_under(present_roots)

    active = frozenset(space_dims(encoders))
    todo: list[tuple[ScannedFile, FileRecord | None]] = []
    extend: list[_Task] = []
    for f in scanned:
        rec = known.get(str(f.path))
        unchanged = rec is not None and (
            (rec.state in ("ok", "error") and (rec.size, rec.mtime_ns) == (f.size, f.mtime_ns))
            or (rec.state == "ok" and rec.hash and _same_content(f.path, rec.hash))
        )
        if unchanged:
            if (rec.size, rec.mtime_ns) != (f.size, f.mtime_ns):
                library.catalog.touch_file(rec.id, f.size, f.mtime_ns)
            report.unchanged += 1
            missing = active - rec.space_set
            if rec.state == "ok" and missing:
                if _writes_any(encoders, KINDS_OF[rec.modality], missing):
                    extend.append(_Task(rec.id, rec.item_id, f.path, rec.modality, missing))
                else:  # no new encoder reads this modality: nothing to decode
                    library.catalog.add_spaces([rec.id], missing)
        else:
            todo.append((f, rec))
            if rec:
                report.updated += 1
            else:
                report.added += 1

    seen = {str(f.path) for f in scanned}
    vanished = [rec.id for path, rec in known.items() if path not in seen]
    if vanished:
        library.store.delete_files(vanished)
        library.catalog.remove_files(vanished)
        report.removed = len(vanished)

    changed = [rec.id for _, rec in todo if rec is not None]
    if changed:
        library.store.delete_files(changed)
    tasks = []
    for f, _ in todo:
        file_id, item_id = library.catalog.begin_file(f.path, f.modality, f.size, f.mtime_ns)
        tasks.append(_Task(file_id, item_id, f.path, f.modality))

    try:
        if tasks or extend:
            pipeline = _Pipeline(library, encoders, options, progress, cancel, workers, report)
            pipeline.run(tasks + extend)
    finally:
        library.store.flush()
        report.seconds = time.perf_counter() - started
    return report


def _writes_any(encoders: Sequence[Encoder], kinds: frozenset[str], spaces: frozenset[str]) -> bool:
    return any(
        spaces.intersection(encoder.routes[kind])
        for encoder in encoders
        for kind in kinds & set(encoder.routes)
    )


def _same_content(path: Path, digest: str) -> bool:
    try:
        return file_hash(path) == digest
    except OSError:
        return False


def _recover_pending(library: Library) -> None:
    """Undo what an interrupted job left: points of files it never committed."""
    pending = library.catalog.files(state="pending")
    if pending:
        log.info("recovering %d files an earlier job left unfinished", len(pending))
        library.store.delete_files([f.id for f in pending])


def _audio_rate(encoders: Sequence[Encoder]) -> int:
    rates = {int(getattr(e, "sample_rate", 16000)) for e in encoders if "audio" in e.routes}
    return max(rates) if rates else 16000


_EXIT = object()


class _Pipeline:
    def __init__(
        self,
        library: Library,
        encoders: Sequence[Encoder],
        options: media.DecodeOptions,
        progress: ProgressCallback,
        cancel: CancelToken,
        workers: int | None,
        report: IndexReport,
    ) -> None:
        self.library = library
        self.spaces = frozenset(space_dims(encoders))
        self.options = options
        self.progress = progress
        self.cancel = cancel
        self.report = report
        self.n_workers = workers or max(1, min(4, (os.cpu_count() or 2) - 1))
        self.routes: dict[str, list[Encoder]] = {}
        for encoder in encoders:
            for kind in encoder.routes:
                self.routes.setdefault(kind, []).append(encoder)
        biggest = max((int(getattr(e, "batch_size", 32)) for e in encoders), default=32)
        self.out: queue.Queue = queue.Queue(maxsize=2 * biggest)
        self.stop = threading.Event()
        self.batches: dict[tuple[int, str], list[tuple[_FileState, int, object]]] = {}
        # files being decoded or encoded; a finished file leaves (memory stays bounded)
        self.states: dict[int, _FileState] = {}
        self.finished: list[_FileState] = []
        self.done_files = 0
        self.total = 0

    # -- decoder threads -------------------------------------------------------------

    def _put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _decode_worker(self, tasks: queue.SimpleQueue) -> None:
        try:
            while not self.stop.is_set():
                try:
                    task = tasks.get_nowait()
                except queue.Empty:
                    return
                digest = None
                try:
                    digest = file_hash(task.path)
                    for n, seg in enumerate(media.decode(task.path, self.options)):
                        if n >= MAX_SEGMENTS_PER_FILE:
                            raise MediaError(task.path, "too many segments for one file")
                        if not self._put(("seg", task, seg)):
                            return
                    self._put(("done", task, digest))
                except MediaError as exc:
                    self._put(("error", task, digest, exc.reason))
                except OSError as exc:
                    self._put(("error", task, digest, f"cannot read: {exc.strerror or exc}"))
                except Exception as exc:  # a decoder bug must not end the job
                    log.exception("unexpected error decoding %s", task.path)
                    self._put(("error", task, digest, f"unexpected error: {exc}"))
        finally:
            self._put(_EXIT)

    # -- the calling thread: encode and commit -------------------------------------------

    def run(self, tasks: list[_Task]) -> None:
        self.total = len(tasks)
        work: queue.SimpleQueue = queue.SimpleQueue()
        for task in tasks:
            work.put(task)
        threads = [
            threading.Thread(target=self._decode_worker, args=(work,), name=f"decode-{i}", daemon=True)
            for i in range(min(self.n_workers, len(tasks)))
        ]
        for t in threads:
            t.start()
        running = len(threads)
        self._emit("indexing")
        try:
            while running:
                if self.cancel.cancelled:
                    self.report.cancelled = True
                    break
                try:
                    msg = self.out.get(timeout=0.1)
                except queue.Empty:
                    continue
                if msg is _EXIT:
                    running -= 1
                    continue
                tag, task = msg[0], msg[1]
                state = self.states.setdefault(task.file_id, _FileState(task))
                if tag == "seg":
                    self._add_segment(state, msg[2])
                elif tag == "done":
                    state.decoded, state.digest = True, msg[2]
                    self._check_finished(state)
                else:
                    state.digest, state.failure = msg[2], msg[3]
                    self._finish(state)
            if not self.report.cancelled:
                for key in list(self.batches):
                    self._encode(key)
        finally:
            self.stop.set()
            while any(t.is_alive() for t in threads):  # unblock workers waiting on a full queue
                try:
                    self.out.get(timeout=0.05)
                except queue.Empty:
                    pass
            self._commit()

    def _add_segment(self, state: _FileState, seg: Segment) -> None:
        if state.failure:
            return
        state.segments.append(
            NewSegment(seg.index, seg.kind, seg.start, seg.end, seg.char_start, seg.char_end)
        )
        for encoder in self.routes.get(seg.kind, ()):
            only = state.task.only
            if only is not None and not only.intersection(encoder.routes[seg.kind]):
                continue  # this file already has that encoder's spaces
            key = (id(encoder), seg.kind)
            batch = self.batches.setdefault(key, [])
            batch.append((state, seg.index, seg.data))
            state.pending += 1
            if len(batch) >= int(getattr(encoder, "batch_size", 32)):
                self._encode(key)

    def _encoder(self, key: tuple[int, str]) -> Encoder:
        return next(e for e in self.routes[key[1]] if id(e) == key[0])

    def _encode(self, key: tuple[int, str]) -> None:
        batch = self.batches.pop(key, [])
        if not batch:
            return
        encoder, kind = self._encoder(key), key[1]
        try:
            out = encoder.encode(kind, [data for _, _, data in batch])
            results = [(entry, {s: v[i] for s, v in out.items()}) for i, entry in enumerate(batch)]
        except ModelUnavailableError:
            raise
        except Exception:
            # One bad input must not sink the batch: encode one by one to find it.
            log.exception("%s failed on a batch of %d; retrying one by one", encoder.name, len(batch))
            results = []
            for entry in batch:
                try:
                    one = encoder.encode(kind, [entry[2]])
                    results.append((entry, {s: v[0] for s, v in one.items()}))
                except ModelUnavailableError:
                    raise
                except Exception as exc:
                    entry[0].failure = entry[0].failure or f"{encoder.name} could not encode it: {exc}"
                    results.append((entry, {}))
        for (state, index, _), vectors in results:
            state.vectors.setdefault(index, {}).update(vectors)
            state.pending -= 1
            self._check_finished(state)

    def _check_finished(self, state: _FileState) -> None:
        if state.decoded and state.pending == 0:
            self._finish(state)

    def _finish(self, state: _FileState) -> None:
        if state.finished:
            return
        state.finished = True
        self.states.pop(state.task.file_id, None)
        self.finished.append(state)
        self.done_files += 1
        self._emit(str(state.task.path))
        points = sum(len(s.vectors) for s in self.finished)
        if len(self.finished) >= COMMIT_EVERY_FILES or points >= COMMIT_EVERY_POINTS:
            self._commit()

    def _commit(self) -> None:
        """Store the vectors of finished files, then mark them indexed in the catalog."""
        if not self.finished:
            return
        finished, self.finished = self.finished, []
        done, failed, points = [], [], []
        extended, updates = [], []
        for state in finished:
            task = state.task
            if task.only is not None:
                self._collect_extension(state, extended, updates)
                continue
            if state.failure is None and not state.vectors:
                state.failure = f"no encoder in this library's profiles reads {task.modality}"
            if state.failure:
                failed.append((task.file_id, state.digest, state.failure))
                self.report.errors.append(FileError(str(task.path), state.failure))
                continue
            kept = [s for s in state.segments if state.vectors.get(s.index)]
            for s in kept:
                sid = segment_id(task.file_id, s.index)
                points.append(StoredPoint(sid, state.vectors[s.index], {
                    "item_id": task.item_id, "segment_id": sid, "file_id": task.file_id,
                    "modality": task.modality, "start": s.start, "end": s.end, "labels": [],
                }))
            done.append((task.file_id, state.digest or "", kept))
            self.report.segments += len(kept)
        self.library.store.upsert(points)
        self.library.store.update_vectors(updates)
        self.library.catalog.finish_files(done, failed, spaces=self.spaces)
        self.library.catalog.add_spaces(extended, self.spaces)
        self.report.indexed += len(done)
        self.report.extended += len(extended)

    def _collect_extension(self, state: _FileState, extended: list, updates: list) -> None:
        """An unchanged file's new vectors go onto its existing points; nothing else moves.

        If it cannot be read now, its vectors stay as they are and the next job retries.
        """
        task = state.task
        if state.failure:
            self.report.errors.append(FileError(str(task.path), state.failure))
            return
        existing = self.library.catalog.segment_indexes(task.file_id)
        for index, vectors in state.vectors.items():
            if index in existing and vectors:
                updates.append((segment_id(task.file_id, index), vectors))
        extended.append(task.file_id)

    def _emit(self, message: str) -> None:
        errors = len(self.report.errors) + sum(1 for s in self.finished if s.failure)
        self.progress(Progress(self.done_files, self.total, message, errors))

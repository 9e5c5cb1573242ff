"""Ingest: plan (scan.py) → decode (threads) → batched encode → store → catalog.

Decoder threads stream segments into one bounded queue; the job's thread batches
them per encoder and input kind, encodes, and commits finished files: vectors go to
the store first, then the catalog marks the file indexed. Decoded media live only in
the queue and the batches; what a file keeps until it is committed is its vectors.
A file is indexed all or nothing; a job that is cancelled, interrupted or killed
leaves the files it had not finished "pending", and the next job redoes them (see
catalog.py).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image

from mmstudio.core import media
from mmstudio.core.catalog import MAX_SEGMENTS_PER_FILE, NewSegment, segment_id
from mmstudio.core.errors import Cancelled, MediaError, MmstudioError, ModelUnavailableError
from mmstudio.core.jobs import CancelToken, Progress, ProgressCallback, no_progress
from mmstudio.core.library import Library
from mmstudio.core.scan import FileError, Task, file_hash, plan
from mmstudio.core.segments import Audio, Segment
from mmstudio.encoders.base import Encoder
from mmstudio.encoders.profiles import audio_rate, space_dims
from mmstudio.store.edge import StoredPoint

log = logging.getLogger(__name__)

COMMIT_EVERY_FILES = 64
COMMIT_EVERY_POINTS = 2048


class EncoderError(MmstudioError):
    """An encoder fails on any input: the job stops, and its files stay to be redone."""


@dataclass
class IndexReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    indexed: int = 0
    #: unchanged files encoded into spaces they did not have yet (a new profile)
    extended: int = 0
    #: indexed files that no encoder of the library's profiles reads (no vectors yet)
    without_vectors: int = 0
    segments: int = 0
    seconds: float = 0.0
    cancelled: bool = False
    errors: list[FileError] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def index(
    library: Library,
    paths: Sequence[os.PathLike | str],
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
    dims = space_dims(encoders)
    library.claim_spaces(encoders)  # one space never takes two models' vectors
    library.store.ensure_spaces(dims)
    options = options or media.DecodeOptions(
        frames_per_second=library.settings.frames_per_second, audio_rate=audio_rate(encoders)
    )
    report = IndexReport()
    _recover_pending(library)
    progress(Progress(0, 0, "looking for changes"))
    try:
        work = plan(library.catalog, paths, encoders, frozenset(dims), lambda: cancel.cancelled)
    except Cancelled:
        report.cancelled = True
        return report
    report.added, report.updated, report.unchanged = work.added, work.updated, work.unchanged
    report.removed = len(work.vanished)
    report.errors.extend(work.errors)
    library.store.delete_files(work.stale + work.vanished)
    library.catalog.remove_files(work.vanished)
    try:
        if work.tasks:
            _Pipeline(library, encoders, options, progress, cancel, workers, report).run(work.tasks)
    finally:
        library.store.flush()
        report.seconds = time.perf_counter() - started
    return report


def _recover_pending(library: Library) -> None:
    """Undo what an interrupted job left: points of files it never committed.

    Pending files still on disk stay pending (the next index of their folder redoes
    them); pending files that are gone are forgotten.
    """
    pending = library.catalog.files(state="pending")
    if pending:
        log.info("recovering %d files an earlier job left unfinished", len(pending))
        library.store.delete_files([f.id for f in pending])
        library.catalog.remove_files([f.id for f in pending if not os.path.exists(f.path)])


def probe_input(kind: str, encoder: Encoder) -> object:
    """A plain input every encoder of that kind must accept."""
    if kind == "image":
        return Image.new("RGB", (64, 64), (128, 128, 128))
    if kind == "audio":
        rate = int(getattr(encoder, "sample_rate", 16000))
        return Audio(np.zeros(rate, np.float32), rate)
    return "probe"


@dataclass
class _FileState:
    task: Task
    segments: list[NewSegment] = field(default_factory=list)
    vectors: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    pending: int = 0
    decoded: bool = False
    digest: str | None = None
    failure: str | None = None
    done: bool = False


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
        self.n_workers = max(1, workers or min(4, (os.cpu_count() or 2) - 1))
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
        self.to_commit: list[_FileState] = []
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
                digest = task.digest
                try:
                    digest = digest or file_hash(task.path, self.stop.is_set)
                    for n, seg in enumerate(media.decode(task.path, self.options)):
                        if n >= MAX_SEGMENTS_PER_FILE:
                            raise MediaError(task.path, "too many segments for one file")
                        if not self._put(("seg", task, seg)):
                            return
                    self._put(("done", task, digest))
                except Cancelled:
                    return
                except MediaError as exc:
                    self._put(("error", task, digest, exc.reason))
                except OSError as exc:
                    self._put(("error", task, digest, f"cannot read: {exc.strerror or exc}"))
                except Exception as exc:  # a decoder bug must not end the job
                    log.exception("unexpected error decoding %s", task.path)
                    self._put(("error", task, digest, f"unexpected error: {exc}"))
        finally:
            self._put(_EXIT)

    # -- the job's thread: encode and commit -------------------------------------------

    def run(self, tasks: list[Task]) -> None:
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
                    self._check_done(state)
                else:
                    state.digest, state.failure = msg[2], msg[3]
                    self._done(state)
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
        except Exception as batch_error:
            results = self._encode_one_by_one(encoder, kind, batch, batch_error)
        for (state, index, _), vectors in results:
            state.vectors.setdefault(index, {}).update(vectors)
            state.pending -= 1
            self._check_done(state)

    def _encode_one_by_one(self, encoder: Encoder, kind: str, batch: list, batch_error: Exception):
        """A failed batch: a broken encoder stops the job; a bad input fails its file only.

        The encoder is probed with a plain input first: if that fails too, the fault is
        the encoder's (a driver error, corrupt weights), and marking the files broken
        would keep them from being retried once it works again.
        """
        try:
            encoder.encode(kind, [probe_input(kind, encoder)])
        except Exception as exc:
            raise EncoderError(
                f"{encoder.name} cannot encode {kind} ({batch_error}); the files it was "
                "working on stay pending and the next index redoes them"
            ) from exc
        log.warning("%s failed on a batch of %d; encoding one by one", encoder.name, len(batch))
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
        return results

    def _check_done(self, state: _FileState) -> None:
        if state.decoded and state.pending == 0:
            self._done(state)

    def _done(self, state: _FileState) -> None:
        if state.done:
            return
        state.done = True
        self.states.pop(state.task.file_id, None)
        self.to_commit.append(state)
        self.done_files += 1
        self._emit(str(state.task.path))
        points = sum(len(s.vectors) for s in self.to_commit)
        if len(self.to_commit) >= COMMIT_EVERY_FILES or points >= COMMIT_EVERY_POINTS:
            self._commit()

    def _commit(self) -> None:
        """Store the vectors of finished files, then record them in the catalog."""
        if not self.to_commit:
            return
        batch, self.to_commit = self.to_commit, []
        done, failed, points, updates, extended = [], [], [], [], []
        for state in batch:
            task = state.task
            if state.failure:
                self.report.errors.append(FileError(str(task.path), state.failure))
                if task.only is None:  # an extension that fails keeps what the file had
                    failed.append((task.file_id, state.digest, state.failure))
                continue
            if task.only is not None:
                existing = self.library.catalog.segment_indexes(task.file_id)
                new = [s for s in state.segments if s.index not in existing and state.vectors.get(s.index)]
                updates += [(segment_id(task.file_id, i), v) for i, v in state.vectors.items()
                            if i in existing and v]
                points += [self._point(task, s, state.vectors[s.index]) for s in new]
                extended.append((task.file_id, new))
                continue
            kept = [s for s in state.segments if state.vectors.get(s.index)]
            points += [self._point(task, s, state.vectors[s.index]) for s in kept]
            done.append((task.file_id, state.digest or "", kept))
            self.report.segments += len(kept)
            self.report.without_vectors += not kept
        self.library.store.upsert(points)
        self.library.store.update_vectors(updates)
        self.library.catalog.finish_files(done, failed, spaces=self.spaces)
        for file_id, new in extended:
            self.library.catalog.add_segments(file_id, new)
        self.library.catalog.add_spaces([f for f, _ in extended], self.spaces)
        self.report.indexed += len(done)
        self.report.extended += len(extended)

    @staticmethod
    def _point(task: Task, seg: NewSegment, vectors: dict[str, np.ndarray]) -> StoredPoint:
        sid = segment_id(task.file_id, seg.index)
        return StoredPoint(sid, vectors, {
            "item_id": task.item_id, "segment_id": sid, "file_id": task.file_id,
            "modality": task.modality, "start": seg.start, "end": seg.end, "labels": [],
        })

    def _emit(self, message: str) -> None:
        errors = len(self.report.errors) + sum(1 for s in self.to_commit if s.failure)
        self.progress(Progress(self.done_files, self.total, message, errors))

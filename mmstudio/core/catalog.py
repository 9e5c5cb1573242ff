"""The catalog: a library's source of truth for items, files and segments (SQLite, WAL).

An item groups the files with the same stem in the same folder (`pet.jpg`,
`pet.txt`, `pet.wav`). A file is indexed when its state is "ok": its segments are
in the catalog and their vectors in the store. A file is "pending" while a job
works on it: a job that dies leaves it pending, and the next job removes whatever
reached the store and does it again. A file that cannot be read is "error", with
the reason.

Segment ids are also the store's point ids: `file_id << SEGMENT_BITS | index`, so a
job can write vectors before it commits the catalog, and anything a dead job left
in the store is found again by its file id. File ids are AUTOINCREMENT and never
reused, so a stale point can never be mistaken for a live one.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mmstudio.core.errors import MmstudioError

SEGMENT_BITS = 20
MAX_SEGMENTS_PER_FILE = 1 << SEGMENT_BITS


def segment_id(file_id: int, index: int) -> int:
    return (file_id << SEGMENT_BITS) | index


def file_id_of(segment: int) -> int:
    return segment >> SEGMENT_BITS


# Each entry migrates the schema from version i to i + 1.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE items (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        folder  TEXT NOT NULL,
        stem    TEXT NOT NULL,
        UNIQUE (folder, stem)
    );
    CREATE TABLE files (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        item_id     INTEGER NOT NULL REFERENCES items(id),
        path        TEXT NOT NULL UNIQUE,
        modality    TEXT NOT NULL,
        size        INTEGER NOT NULL,
        mtime_ns    INTEGER NOT NULL,
        hash        TEXT,
        state       TEXT NOT NULL CHECK (state IN ('pending', 'ok', 'error')),
        error       TEXT,
        indexed_at  REAL
    );
    CREATE INDEX files_item ON files(item_id);
    CREATE INDEX files_state ON files(state);
    CREATE TABLE segments (
        id          INTEGER PRIMARY KEY,
        file_id     INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        idx         INTEGER NOT NULL,
        kind        TEXT NOT NULL,
        start       REAL,
        "end"       REAL,
        char_start  INTEGER,
        char_end    INTEGER
    );
    CREATE INDEX segments_file ON segments(file_id);
    """,
    # 2: the spaces each indexed file has vectors in, so that a library that gains a
    # profile encodes only what the new spaces miss. Schema-1 libraries only ever had
    # the starter profile.
    """
    ALTER TABLE files ADD COLUMN spaces TEXT NOT NULL DEFAULT '';
    UPDATE files SET spaces = 'starter,starter-audio,starter-image' WHERE state = 'ok';
    """,
    # 3: labels (mmstudio.labels). A schema is a named label set; `labels` holds what a
    # person said, `label_journal` every change to it (undo/redo, audit), `suggestions`
    # what a model proposes, `splits` the train/validation/test split of an item.
    # Labels reference items without a cascade: an item whose files went away keeps
    # its labels (remove_files keeps labelled items) and gets them back if they return.
    """
    CREATE TABLE schemas (
        name     TEXT PRIMARY KEY,
        multi    INTEGER NOT NULL DEFAULT 0,
        labels   TEXT NOT NULL,
        created  REAL NOT NULL
    );
    CREATE TABLE labels (
        item_id  INTEGER NOT NULL,
        schema   TEXT NOT NULL,
        label    TEXT NOT NULL,
        at       REAL NOT NULL,
        PRIMARY KEY (item_id, schema, label)
    );
    CREATE INDEX labels_schema ON labels(schema, label);
    CREATE TABLE label_journal (
        seq      INTEGER PRIMARY KEY AUTOINCREMENT,
        change   TEXT NOT NULL UNIQUE,
        session  TEXT NOT NULL,
        schema   TEXT NOT NULL,
        before   TEXT NOT NULL,
        after    TEXT NOT NULL,
        at       REAL NOT NULL,
        state    TEXT NOT NULL DEFAULT 'done' CHECK (state IN ('done', 'undone', 'dropped'))
    );
    CREATE INDEX label_journal_session ON label_journal(session, seq);
    CREATE TABLE suggestions (
        item_id  INTEGER NOT NULL,
        schema   TEXT NOT NULL,
        label    TEXT NOT NULL,
        score    REAL NOT NULL,
        source   TEXT NOT NULL,
        at       REAL NOT NULL,
        PRIMARY KEY (item_id, schema)
    );
    CREATE TABLE splits (
        item_id  INTEGER PRIMARY KEY,
        split    TEXT NOT NULL
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


class CatalogVersionError(MmstudioError):
    pass


@dataclass(frozen=True)
class FileRecord:
    id: int
    item_id: int
    path: str
    modality: str
    size: int
    mtime_ns: int
    hash: str | None
    state: str
    error: str | None
    spaces: str = ""

    @property
    def space_set(self) -> frozenset[str]:
        return frozenset(s for s in self.spaces.split(",") if s)


_FILE_COLUMNS = "id, item_id, path, modality, size, mtime_ns, hash, state, error, spaces"


@dataclass(frozen=True)
class SegmentRecord:
    """A segment joined with its file: what a search hit resolves to."""

    id: int
    file_id: int
    item_id: int
    path: str
    modality: str
    index: int
    kind: str
    start: float | None
    end: float | None
    char_start: int | None
    char_end: int | None


@dataclass(frozen=True)
class NewSegment:
    index: int
    kind: str
    start: float | None = None
    end: float | None = None
    char_start: int | None = None
    char_end: int | None = None


# Segments of indexed files that have vectors in a space (the space is the first
# parameter; a file lists the spaces its job wrote, comma-separated).
_IN_SPACE = ("FROM segments s JOIN files f ON f.id = s.file_id WHERE f.state = 'ok' "
             "AND instr(',' || f.spaces || ',', ',' || ? || ',') > 0")


class Catalog:
    """Thread-safe access to catalog.sqlite (one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    # -- plumbing -------------------------------------------------------------

    def _migrate(self) -> None:
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise CatalogVersionError(
                    f"{self.path} was written by a newer mmstudio (schema {version}, "
                    f"this one knows {SCHEMA_VERSION}); upgrade mmstudio to open it."
                )
            for step in range(version, SCHEMA_VERSION):
                with self.transaction() as db:
                    for statement in MIGRATIONS[step].split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(f"PRAGMA user_version={step + 1}")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction. durable: sync the WAL to disk on commit (labels), so
        the change survives a power cut, not only the process being killed."""
        with self._lock:
            if durable:
                self._db.execute("PRAGMA synchronous=FULL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            finally:
                if durable:
                    self._db.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def query(self, sql: str, args: Sequence[object] = ()) -> list[sqlite3.Row]:
        """A read for the packages that keep their own tables here (labels)."""
        return self._query(sql, args)

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- files ----------------------------------------------------------------

    def files(self, state: str | None = None) -> list[FileRecord]:
        sql = f"SELECT {_FILE_COLUMNS} FROM files"
        rows = self._query(sql + " WHERE state = ?", (state,)) if state else self._query(sql)
        return [FileRecord(*row) for row in rows]

    def files_under(self, roots: Iterable[Path]) -> dict[str, FileRecord]:
        """Files whose path lies inside any of `roots` (or is one of them), by path."""
        found: dict[str, FileRecord] = {}
        for root in roots:
            root_s = str(root)
            prefix = root_s.rstrip(os.sep) + os.sep
            rows = self._query(
                f"SELECT {_FILE_COLUMNS} FROM files WHERE path = ? OR substr(path, 1, ?) = ?",
                (root_s, len(prefix), prefix),
            )
            found.update((row["path"], FileRecord(*row)) for row in rows)
        return found

    def begin_file(self, path: Path, modality: str, size: int, mtime_ns: int) -> tuple[int, int]:
        """Create (or reset) the file's row as pending, with its item: (file id, item id).

        A changed file keeps its id: its old segments go, and the job that resets it
        removes their points from the store first.
        """
        folder, stem = str(path.parent), path.stem
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO items (folder, stem) VALUES (?, ?)", (folder, stem))
            item_id = db.execute(
                "SELECT id FROM items WHERE folder = ? AND stem = ?", (folder, stem)
            ).fetchone()[0]
            row = db.execute("SELECT id FROM files WHERE path = ?", (str(path),)).fetchone()
            if row is None:
                cur = db.execute(
                    "INSERT INTO files (item_id, path, modality, size, mtime_ns, state) "
                    "VALUES (?, ?, ?, ?, ?, 'pending')",
                    (item_id, str(path), modality, size, mtime_ns),
                )
                return int(cur.lastrowid), int(item_id)
            file_id = int(row[0])
            db.execute("DELETE FROM segments WHERE file_id = ?", (file_id,))
            db.execute(
                "UPDATE files SET item_id = ?, modality = ?, size = ?, mtime_ns = ?, hash = NULL, "
                "state = 'pending', error = NULL WHERE id = ?",
                (item_id, modality, size, mtime_ns, file_id),
            )
            return file_id, int(item_id)

    def finish_files(
        self,
        done: Sequence[tuple[int, str, Sequence[NewSegment]]],
        failed: Sequence[tuple[int, str | None, str]] = (),
        spaces: Iterable[str] = (),
    ) -> None:
        """Record finished files in one transaction.

        done: (file_id, content hash, segments) for files whose vectors are stored.
        failed: (file_id, content hash or None, reason) for files that could not be read.
        spaces: the spaces the job encoded the done files in.
        """
        now = time.time()
        joined = ",".join(sorted(spaces))
        with self.transaction() as db:
            for file_id, digest, segments in done:
                self._insert_segments(db, file_id, segments)
                db.execute(
                    "UPDATE files SET state = 'ok', hash = ?, error = NULL, indexed_at = ?, "
                    "spaces = ? WHERE id = ?",
                    (digest, now, joined, file_id),
                )
            for file_id, digest, reason in failed:
                db.execute("DELETE FROM segments WHERE file_id = ?", (file_id,))
                db.execute(
                    "UPDATE files SET state = 'error', hash = ?, error = ?, indexed_at = ? "
                    "WHERE id = ?",
                    (digest, reason, now, file_id),
                )

    def add_spaces(self, file_ids: Sequence[int], spaces: Iterable[str]) -> None:
        """Files that now also have vectors in `spaces`."""
        added = set(spaces)
        if not file_ids:
            return
        with self.transaction() as db:
            for file_id in file_ids:
                row = db.execute("SELECT spaces FROM files WHERE id = ?", (file_id,)).fetchone()
                if row is not None:
                    merged = {s for s in row[0].split(",") if s} | added
                    db.execute("UPDATE files SET spaces = ? WHERE id = ?",
                               (",".join(sorted(merged)), file_id))

    def segment_indexes(self, file_id: int) -> set[int]:
        rows = self._query("SELECT idx FROM segments WHERE file_id = ?", (file_id,))
        return {int(r[0]) for r in rows}

    def touch_files(self, rows: Sequence[tuple[int, int, int]]) -> None:
        """Files whose mtime moved but whose content did not: (id, size, mtime_ns)."""
        if rows:
            with self.transaction() as db:
                db.executemany("UPDATE files SET size = ?, mtime_ns = ? WHERE id = ?",
                               [(size, mtime, fid) for fid, size, mtime in rows])

    def add_segments(self, file_id: int, segments: Sequence[NewSegment]) -> None:
        """More segments of an indexed file (a new encoder read parts the old ones did not)."""
        with self.transaction() as db:
            self._insert_segments(db, file_id, segments)

    @staticmethod
    def _insert_segments(db: sqlite3.Connection, file_id: int, segments: Sequence[NewSegment]) -> None:
        db.executemany(
            'INSERT OR REPLACE INTO segments (id, file_id, idx, kind, start, "end", '
            "char_start, char_end) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(segment_id(file_id, s.index), file_id, s.index, s.kind, s.start, s.end,
              s.char_start, s.char_end) for s in segments],
        )

    def remove_files(self, file_ids: Sequence[int]) -> None:
        """Forget files (their segments go with them) and items left with no file."""
        if not file_ids:
            return
        with self.transaction() as db:
            db.executemany("DELETE FROM files WHERE id = ?", [(i,) for i in file_ids])
            db.execute(
                "DELETE FROM items WHERE id NOT IN (SELECT DISTINCT item_id FROM files) "
                "AND id NOT IN (SELECT DISTINCT item_id FROM labels)"
            )

    # -- segments ---------------------------------------------------------------

    def resolve(self, segment_ids: Sequence[int]) -> dict[int, SegmentRecord]:
        """Segments of indexed files, by id; ids of anything else are left out."""
        found: dict[int, SegmentRecord] = {}
        ids = list(dict.fromkeys(segment_ids))
        for lo in range(0, len(ids), 500):
            chunk = ids[lo : lo + 500]
            rows = self._query(
                "SELECT s.id, s.file_id, f.item_id, f.path, f.modality, s.idx, s.kind, "
                's.start, s."end", s.char_start, s.char_end FROM segments s '
                "JOIN files f ON f.id = s.file_id "
                f"WHERE f.state = 'ok' AND s.id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            found.update((row[0], SegmentRecord(*row)) for row in rows)
        return found

    def segments_of(self, path: str) -> list[SegmentRecord]:
        """The segments of the indexed file at `path`, in index order (none if not indexed)."""
        rows = self._query(
            "SELECT s.id, s.file_id, f.item_id, f.path, f.modality, s.idx, s.kind, "
            's.start, s."end", s.char_start, s.char_end FROM segments s '
            "JOIN files f ON f.id = s.file_id WHERE f.state = 'ok' AND f.path = ? ORDER BY s.idx",
            (str(path),),
        )
        return [SegmentRecord(*row) for row in rows]

    def item_segments(self, item_ids: Sequence[int] | None = None) -> list[tuple[int, int, str]]:
        """(item id, segment id, segment kind) of indexed files, for all items or some."""
        sql = ("SELECT f.item_id, s.id, s.kind FROM segments s JOIN files f ON f.id = s.file_id "
               "WHERE f.state = 'ok'")
        if item_ids is None:
            return [tuple(r) for r in self._query(sql + " ORDER BY f.item_id, s.id")]
        found: list[tuple[int, int, str]] = []
        ids = list(dict.fromkeys(int(i) for i in item_ids))
        for lo in range(0, len(ids), 500):
            chunk = ids[lo : lo + 500]
            rows = self._query(sql + f" AND f.item_id IN ({','.join('?' * len(chunk))})", chunk)
            found.extend(tuple(r) for r in rows)
        return found

    def space_segments(self, space: str, kinds: Sequence[str] | None = None
                       ) -> list[tuple[int, int, float]]:
        """(item id, segment id, when its file was indexed) of the segments of indexed
        files that have vectors in `space` (of these kinds of segment), by item."""
        sql = "SELECT f.item_id, s.id, f.indexed_at " + _IN_SPACE
        args: list[object] = [space]
        if kinds is not None:
            sql += f" AND s.kind IN ({','.join('?' * len(kinds))})"
            args += list(kinds)
        return [(int(r[0]), int(r[1]), float(r[2] or 0.0))
                for r in self._query(sql + " ORDER BY f.item_id, s.id", args)]

    def space_sample(self, space: str, kind: str, limit: int) -> list[int]:
        """Up to `limit` segment ids of this kind in files that have vectors in `space`."""
        return [int(r[0]) for r in self._query(
            "SELECT s.id " + _IN_SPACE + " AND s.kind = ? LIMIT ?", (space, kind, limit))]

    def space_item_count(self, space: str, kinds: Sequence[str]) -> int:
        """Items with segments of these kinds in files that have vectors in `space`."""
        if not kinds:
            return 0
        return int(self._query(
            "SELECT COUNT(DISTINCT f.item_id) " + _IN_SPACE +
            f" AND s.kind IN ({','.join('?' * len(kinds))})", [space, *kinds])[0][0])

    def item_files(self, item_ids: Sequence[int] | None = None) -> dict[int, list[tuple[str, str]]]:
        """The indexed files of items: {item id: [(path, modality), ...]} (items with one)."""
        sql = "SELECT item_id, path, modality FROM files WHERE state = 'ok'"
        rows: list[sqlite3.Row] = []
        if item_ids is None:
            rows = self._query(sql + " ORDER BY item_id, path")
        else:
            ids = list(dict.fromkeys(int(i) for i in item_ids))
            for lo in range(0, len(ids), 500):
                chunk = ids[lo : lo + 500]
                rows += self._query(
                    sql + f" AND item_id IN ({','.join('?' * len(chunk))}) ORDER BY item_id, path",
                    chunk)
        found: dict[int, list[tuple[str, str]]] = {}
        for item_id, path, modality in rows:
            found.setdefault(int(item_id), []).append((path, modality))
        return found

    def item_of_path(self, path: str) -> int | None:
        rows = self._query("SELECT item_id FROM files WHERE path = ?", (str(path),))
        return int(rows[0][0]) if rows else None

    # -- statistics ---------------------------------------------------------------

    def counts(self) -> dict[str, object]:
        by_modality = {
            row[0]: row[1]
            for row in self._query(
                "SELECT modality, COUNT(*) FROM files WHERE state = 'ok' GROUP BY modality"
            )
        }
        by_state = {
            row[0]: row[1] for row in self._query("SELECT state, COUNT(*) FROM files GROUP BY state")
        }
        items = self._query(
            "SELECT COUNT(DISTINCT item_id) FROM files WHERE state = 'ok'"
        )[0][0]
        segments = self._query("SELECT COUNT(*) FROM segments")[0][0]
        return {
            "items": items,
            "files_by_modality": by_modality,
            "files_by_state": by_state,
            "segments": segments,
        }

    def errors(self) -> list[tuple[str, str]]:
        return [
            (row[0], row[1])
            for row in self._query("SELECT path, error FROM files WHERE state = 'error' ORDER BY path")
        ]

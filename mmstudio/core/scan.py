"""What an index job has to do: walk the folders, compare with the catalog, plan.

Unchanged files are skipped (same size and mtime; or, when only the mtime moved,
the same content hash). A file that could not be looked at (a folder that cannot be
listed, a stat that fails) is reported and never taken for a deleted file: an
unreadable mount must not wipe its part of the library.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mmstudio.core import media
from mmstudio.core.catalog import Catalog, FileRecord
from mmstudio.core.errors import Cancelled
from mmstudio.core.segments import KINDS_OF
from mmstudio.encoders.base import Encoder


@dataclass(frozen=True)
class FileError:
    path: str
    reason: str


@dataclass(frozen=True)
class ScannedFile:
    path: Path
    modality: str
    size: int
    mtime_ns: int


@dataclass
class Task:
    """One file for the pipeline."""

    file_id: int
    item_id: int
    path: Path
    modality: str
    #: None: index the file from scratch; else only add these spaces to it
    only: frozenset[str] | None = None
    #: content hash, when planning already computed it
    digest: str | None = None


@dataclass
class Plan:
    tasks: list[Task] = field(default_factory=list)
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[FileError] = field(default_factory=list)
    #: changed files, whose old points the caller deletes before re-encoding
    stale: list[int] = field(default_factory=list)
    #: files gone from disk, which the caller removes from the store and the catalog
    vanished: list[int] = field(default_factory=list)


#: what a path that is not a regular file is, by its mode: opening a FIFO waits for a
#: writer for ever, and a device (a link to /dev/zero) never ends
_SPECIAL = ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
            (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"))


def not_regular(mode: int) -> str | None:
    """Why a file of this mode (as os.stat gives it, links followed) is not read, or None
    for a regular file."""
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _SPECIAL if test(mode)), "special file")
    return f"not a regular file: {kind}"


def scan(roots: Iterable[Path]) -> tuple[list[ScannedFile], list[FileError]]:
    """Supported files under the roots (recursively; hidden files and folders skipped)."""
    found: dict[Path, ScannedFile] = {}
    errors: list[FileError] = []

    def add(path: Path) -> None:
        modality = media.modality_of(path)
        if modality is None:
            return
        try:
            str(path).encode("utf-8")
        except UnicodeEncodeError:
            errors.append(FileError(os.fsdecode(path), "the file name is not valid UTF-8; rename it"))
            return
        try:
            st = path.stat()
        except OSError as exc:
            errors.append(FileError(str(path), f"cannot read: {exc.strerror or exc}"))
            return
        if reason := not_regular(st.st_mode):  # never opened: it could hang the job
            errors.append(FileError(str(path), reason))
            return
        found[path] = ScannedFile(path, modality, st.st_size, st.st_mtime_ns)

    def folder_error(exc: OSError) -> None:
        errors.append(FileError(str(exc.filename), f"cannot read folder: {exc.strerror}"))

    for root in roots:
        if not root.is_dir():
            if root.exists():  # a file, or a special one that add() reports
                add(root)
            else:
                errors.append(FileError(str(root), "not found"))
            continue
        for folder, dirs, files in os.walk(root, onerror=folder_error):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if not name.startswith("."):
                    add(Path(folder) / name)
    return list(found.values()), errors


def file_hash(path: Path, stop: Callable[[], bool] | None = None) -> str:
    """Content hash (BLAKE2b-128); `stop` is asked between megabytes."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            if stop is not None and stop():
                raise Cancelled("cancelled")
            digest.update(chunk)
    return digest.hexdigest()


def plan(
    catalog: Catalog,
    paths: Sequence[Path | str],
    encoders: Sequence[Encoder],
    spaces: frozenset[str],
    stop: Callable[[], bool],
) -> Plan:
    """Compare the folders with the catalog; reset what changed; return the work.

    Raises Cancelled if `stop` turns true while content hashes are checked.
    """
    result = Plan()
    roots = [_root(Path(p)) for p in paths]
    scanned, result.errors = scan(roots)
    known = catalog.files_under([r for r in roots if r.exists()])
    todo: list[tuple[ScannedFile, FileRecord | None, str | None]] = []
    touched: list[tuple[int, int, int]] = []
    nothing_to_decode: list[int] = []
    for f in scanned:
        if stop():
            raise Cancelled("cancelled")
        rec = known.get(str(f.path))
        same_stat = rec is not None and (rec.size, rec.mtime_ns) == (f.size, f.mtime_ns)
        digest = None
        if rec is not None and rec.state == "ok" and not same_stat and rec.hash:
            try:
                digest = file_hash(f.path, stop)
            except OSError:
                digest = None
            unchanged = digest == rec.hash
        else:
            unchanged = same_stat and rec.state in ("ok", "error")
        if not unchanged:
            todo.append((f, rec, digest))
            result.updated += rec is not None
            result.added += rec is None
            continue
        result.unchanged += 1
        if not same_stat:
            touched.append((rec.id, f.size, f.mtime_ns))
        missing = spaces - rec.space_set
        if rec.state == "ok" and missing:
            if writes_any(encoders, KINDS_OF[rec.modality], missing):
                result.tasks.append(Task(rec.id, rec.item_id, f.path, rec.modality, missing))
            else:  # no new encoder reads this modality: nothing to decode
                nothing_to_decode.append(rec.id)
    catalog.touch_files(touched)
    catalog.add_spaces(nothing_to_decode, spaces)

    unreadable = [Path(e.path) for e in result.errors]
    seen = {str(f.path) for f in scanned}
    result.vanished = [
        rec.id for path, rec in known.items()
        if path not in seen and not _under_any(Path(path), unreadable)
    ]
    result.stale = [rec.id for _, rec, _ in todo if rec is not None]
    result.tasks[:0] = [
        Task(*catalog.begin_file(f.path, f.modality, f.size, f.mtime_ns), f.path, f.modality,
             digest=digest)
        for f, _, digest in todo
    ]
    return result


def writes_any(encoders: Sequence[Encoder], kinds: frozenset[str], spaces: frozenset[str]) -> bool:
    """Whether any encoder turns one of these kinds of segment into one of these spaces."""
    return any(
        spaces.intersection(encoder.routes[kind])
        for encoder in encoders
        for kind in kinds & set(encoder.routes)
    )


def _root(path: Path) -> Path:
    """A path to index, links resolved; a link to a special file stays as named, so that
    the scan reports it under its own name (resolved, /dev/zero has no media suffix)."""
    resolved = path.expanduser().resolve()
    if resolved.is_dir() or resolved.is_file() or not resolved.exists():
        return resolved
    return path.expanduser().absolute()


def _under_any(path: Path, folders: Sequence[Path]) -> bool:
    return any(path == f or f in path.parents for f in folders)

"""Export and import of labels: CSV, JSON Lines, and a Hugging Face `datasets` folder.

CSV and JSON Lines hold one row per item: its main file, all its files, its labels,
its split, the model's suggestion and the schema. The Hugging Face folder follows the
ImageFolder/AudioFolder convention: `<out>/<split>/` holds the files and a
`metadata.jsonl` whose `file_name` is relative to it, so
`load_dataset("imagefolder", data_dir=out)` reads a folder exported with
modality="image" (and "audiofolder" one exported with modality="audio").

Import reads any of the three back (the reading is in labels/readers.py). Rows are
matched to items by the file's path, else by file name and size; what cannot be
matched is reported per row and the rest is applied as one journaled change, so one
undo takes the whole import back.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mmstudio.core.jobs import CancelToken, Progress, ProgressCallback, no_progress
from mmstudio.labels.readers import ExchangeError, ItemMatcher, Row, read_rows
from mmstudio.labels.schema import KEYS, PALETTE, LabelDef, Schema, SchemaError
from mmstudio.labels.store import SPLITS

log = logging.getLogger(__name__)

__all__ = ["CSV_COLUMNS", "FORMATS", "MAIN_ORDER", "ExchangeError", "ExportReport",
           "ImportReport", "export_labels", "hashed_split", "import_labels", "main_file"]

FORMATS = ("csv", "jsonl", "hf")
CSV_COLUMNS = ("path", "labels", "split", "suggestion", "score", "suggestion_source", "schema",
               "item", "files")
# The main file of an item of several files: what a viewer would show first.
MAIN_ORDER = ("video", "image", "audio", "text")
# Names the HF loaders read as metadata: a media file with one of them is renamed.
_RESERVED = frozenset({"metadata.jsonl", "metadata.csv"})


@dataclass(frozen=True)
class ExportReport:
    path: Path
    rows: int
    #: files put in an HF folder as copies or hard links (symbolic links not counted)
    files_copied: int
    #: labelled items left out: none of their files is indexed, or on disk, any more
    skipped: int = 0


@dataclass(frozen=True)
class ImportReport:
    applied: int
    #: (row, reason) for each row that was not applied; a row reads "line 3: /a/b.png"
    unmatched: list[tuple[str, str]]
    created_labels: list[str]
    #: the journal entry of the import (None when no labels were applied)
    change_id: str | None
    schema: str = ""
    splits: int = 0


# -- export ---------------------------------------------------------------------------


def export_labels(library, schema: str, path: Path, fmt: str | None = None, *,
                  include_unlabeled: bool = False, copy_files: bool = True,
                  relative_paths: bool = False, modality: str | None = None,
                  progress: ProgressCallback = no_progress,
                  cancel: CancelToken | None = None) -> ExportReport:
    """Write the labels of `schema` to `path` as CSV, JSON Lines or an HF folder.

    fmt: "csv", "jsonl" or "hf"; by default from the path (.csv, .jsonl, else a folder).
    Items without a stored split get one from a hash of their main file's path (80 %
    train, 10 % validation, 10 % test): the same on every export, as long as the file
    stays where it is. Paths are absolute unless `relative_paths` (relative to the
    exported file's folder). For the HF folder, files are hard-linked where the
    filesystem allows and copied otherwise; with `copy_files=False` they are symbolic
    links to the library's files instead. The folder must be new or empty.

    modality ("image", "audio", "video", "text"): export only items with a file of that
    kind, that file as the main one. The HF loaders read every `file_name` as their
    kind (`datasets` 3 and later), so an HF folder for `imagefolder` wants "image" and
    one for `audiofolder` wants "audio".
    """
    path = Path(path).expanduser().absolute()
    fmt = _format_of(path, fmt, exporting=True)
    s = library.labels.schema(schema)
    if modality is not None and modality not in MAIN_ORDER:
        raise ExchangeError(f"unknown modality {modality!r}; use one of {', '.join(MAIN_ORDER)}")
    rows, skipped = _export_rows(library, s, include_unlabeled, modality)
    progress(Progress(0, len(rows), f"exporting {len(rows)} items"))
    if fmt == "hf":
        written, copied = _write_hf(s, rows, path, copy_files, modality, progress, cancel)
    else:
        _write_table(s, rows, path, fmt, relative_paths, progress, cancel)
        written, copied = len(rows), 0
    skipped += len(rows) - written
    if skipped:
        log.warning("%d items have no file on disk or in the index any more; left out", skipped)
    log.info("exported %d items of %r to %s", written, schema, path)
    return ExportReport(path, written, copied, skipped)


@dataclass(frozen=True)
class _Item:
    id: int
    main: str
    files: tuple[str, ...]  # the main file first
    labels: tuple[str, ...]
    split: str
    suggestion: object | None  # store.Suggestion


def _export_rows(library, s: Schema, include_unlabeled: bool, modality: str | None
                 ) -> tuple[list[_Item], int]:
    store = library.labels
    labels = store.labels(s.name)
    files = library.catalog.item_files(None if include_unlabeled else list(labels))
    splits = store.splits(files)
    suggestions = store.suggestions(s.name, files)
    order = {n: i for i, n in enumerate(s.names)}
    rows = []
    for item_id, item_files in files.items():
        if modality is not None and all(m != modality for _, m in item_files):
            continue
        main, rest = main_file(item_files, modality)
        chosen = sorted(labels.get(item_id, ()), key=lambda n: (order.get(n, len(order)), n))
        rows.append(_Item(item_id, main, (main, *rest), tuple(chosen),
                          splits.get(item_id) or hashed_split(main),
                          suggestions.get(item_id)))
    rows.sort(key=lambda r: r.main)
    return rows, len(set(labels) - set(files))


def main_file(files: Iterable[tuple[str, str]], prefer: str | None = None
              ) -> tuple[str, list[str]]:
    """The main file of an item ((path, modality) pairs) and the rest: one of modality
    `prefer` if given, else video > image > audio > text, then the first path."""
    ranked = sorted(files, key=lambda f: (f[1] != prefer, MAIN_ORDER.index(f[1])
                                          if f[1] in MAIN_ORDER else len(MAIN_ORDER), f[0]))
    return ranked[0][0], [p for p, _ in ranked[1:]]


def hashed_split(path: str) -> str:
    """A split from a hash of the path: 80 % train, 10 % validation, 10 % test. Stable
    (unlike Python's salted hash()) so an item stays in its split across exports."""
    bucket = int.from_bytes(hashlib.sha1(path.encode("utf-8")).digest()[:4], "big") % 100
    return "train" if bucket < 80 else "validation" if bucket < 90 else "test"


def _write_table(s: Schema, rows: list[_Item], path: Path, fmt: str, relative: bool,
                 progress: ProgressCallback, cancel: CancelToken | None) -> None:
    if path.is_dir():
        raise ExchangeError(f"{path} is a folder; give a file name ending in .{fmt}")
    path.parent.mkdir(parents=True, exist_ok=True)

    def shown(p: str) -> str:
        if not relative:
            return p
        try:
            return Path(os.path.relpath(p, path.parent)).as_posix()
        except ValueError:  # another drive (Windows): no relative path exists
            return p

    # Written beside the target and renamed over it, so a failed or cancelled export
    # never leaves half a file where the last good one was.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with open(fd, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, quoting=csv.QUOTE_MINIMAL) if fmt == "csv" else None
            if writer:
                writer.writerow(CSV_COLUMNS)
            for n, r in enumerate(rows):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                sug = r.suggestion
                if writer:
                    writer.writerow([
                        shown(r.main), "|".join(r.labels), r.split, sug.label if sug else "",
                        f"{sug.score:.6g}" if sug else "", sug.source if sug else "", s.name,
                        r.id, "|".join(shown(p) for p in r.files)])
                else:
                    f.write(json.dumps({
                        "path": shown(r.main), "files": [shown(p) for p in r.files],
                        "labels": list(r.labels), "split": r.split,
                        "scores": {sug.label: sug.score} if sug else {},
                        "suggestion_source": sug.source if sug else None,
                        "schema": s.name, "item": r.id}, ensure_ascii=False) + "\n")
                progress(Progress(n + 1, len(rows)))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_hf(s: Schema, rows: list[_Item], out: Path, copy_files: bool, modality: str | None,
              progress: ProgressCallback, cancel: CancelToken | None) -> tuple[int, int]:
    """Write the dataset folder; returns (rows written, files copied or hard-linked)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExchangeError(f"{out} is not an empty folder; give a new or empty folder for "
                            "the dataset")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Built in a hidden sibling and renamed into place: a cancelled export leaves nothing.
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    copied = written = 0
    try:
        taken: dict[str, set[str]] = {}
        metadata: dict[str, list[str]] = {}
        for n, r in enumerate(rows):
            if cancel is not None:
                cancel.raise_if_cancelled()
            present = [p for p in r.files if Path(p).is_file()]
            if r.main not in present:
                log.warning("%s is gone from disk; left out of the dataset", r.main)
                continue
            names = _names_in_split(present, taken.setdefault(r.split, set()))
            folder = tmp / r.split
            folder.mkdir(exist_ok=True)
            for src in present:
                copied += _place(Path(src), folder / names[src], copy_files)
            written += 1
            row: dict[str, object] = {"file_name": names[r.main]}
            if s.multi:
                row["labels"] = list(r.labels)
            else:
                row["label"] = r.labels[0] if r.labels else None
            # all the item's files, main first: never empty, so its type is the same in
            # every split (datasets refuses splits whose metadata types differ, and an
            # empty list reads as a list of nulls)
            row.update(files=[names[p] for p in present], mmstudio_item=r.id,
                       mmstudio_path=r.main, schema=s.name)
            metadata.setdefault(r.split, []).append(json.dumps(row, ensure_ascii=False))
            progress(Progress(n + 1, len(rows)))
        for split, lines in metadata.items():
            (tmp / split / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        _write_card(tmp, s, modality, {k: len(v) for k, v in metadata.items()})
        if out.exists():
            out.rmdir()  # empty, checked above; a rename onto a folder fails on Windows
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return written, copied


def _names_in_split(files: list[str], taken: set[str]) -> dict[str, str]:
    """Names in the split folder for an item's files. The files of one item share a
    stem, so they get one prefix (a hash of their folder) when any name is taken."""
    names = {p: Path(p).name for p in files}
    # casefold: two names that differ in case are one file on macOS and Windows
    if any(n.casefold() in taken or n.casefold() in _RESERVED for n in names.values()):
        prefix = hashlib.sha1(str(Path(files[0]).parent).encode("utf-8")).hexdigest()[:8]
        names = {p: f"{prefix}_{n}" for p, n in names.items()}
        while any(n.casefold() in taken for n in names.values()):  # rare: extend the prefix
            names = {p: f"{prefix}_{n}" for p, n in names.items()}
    taken.update(n.casefold() for n in names.values())
    return names


def _place(src: Path, dst: Path, copy_files: bool) -> bool:
    """Put `src` at `dst`; True if `dst` holds the bytes (a copy or a hard link)."""
    if not copy_files:
        try:
            dst.symlink_to(src)
            return False
        except OSError:  # no symlinks (Windows without the right): copy instead
            log.info("cannot link %s; copying it", src)
    try:
        os.link(src, dst)  # same filesystem: no second copy of the bytes
    except OSError:
        shutil.copy2(src, dst)
    return True


def _write_card(folder: Path, s: Schema, modality: str | None,
                counts: Mapping[str, int]) -> None:
    column = "labels (a list)" if s.multi else "label"
    loader = {"image": "imagefolder", "audio": "audiofolder", "video": "videofolder"}.get(
        modality or "", "imagefolder")
    lines = [f"# {s.name}", "", f"Labels exported from mmstudio, schema `{s.name}` "
             f"({'multi-label' if s.multi else 'single-label'}): {', '.join(s.names)}.", "",
             "Each split folder holds the files and a `metadata.jsonl` with `file_name`, "
             f"`{column}`, `files` (all the item's files, `file_name` first), `mmstudio_item`,",
             "`mmstudio_path` (the original file) and `schema`.", "",
             "```python", "from datasets import load_dataset",
             f'ds = load_dataset("{loader}", data_dir="path/to/this/folder")', "```", ""]
    if modality is None:
        lines += ["(`file_name` is each item's main file, of any kind: export with one "
                  "modality for a folder that one loader reads whole.)", ""]
    lines += [f"- {split}: {n} items" for split, n in sorted(counts.items())]
    (folder / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


# -- import ---------------------------------------------------------------------------


def import_labels(library, path: Path, schema: str | None = None, fmt: str | None = None, *,
                  create_schema: bool = True, session: str = "import",
                  progress: ProgressCallback = no_progress,
                  cancel: CancelToken | None = None) -> ImportReport:
    """Read labels (and splits) from a CSV, JSON Lines file or HF folder into `schema`.

    CSV needs a `path` column (or `file_name`) and `labels` (or `label`; several
    labels separated by "|"); JSON Lines the same keys, labels a list or a string;
    `split` is optional. Relative paths are relative to the file. The schema is
    `schema`, else the one the rows name. With `create_schema`, labels it lacks are
    added (and a missing schema created, multi-label if a row has several labels);
    without, such rows are reported. Rows that cannot be applied are reported with the
    reason and the rest is applied as one change in `session`:
    `library.labels.undo(session)` takes it back (splits and schema changes stay).
    """
    path = Path(path).expanduser().absolute()
    fmt = _format_of(path, fmt, exporting=False)
    if not path.exists():
        raise ExchangeError(f"{path} does not exist")
    problems: list[tuple[str, str]] = []
    rows = read_rows(path, fmt, problems)
    schema = schema or _schema_named_by(rows, path)
    store = library.labels
    existing = next((x for x in store.schemas() if x.name == schema), None)
    if existing is None and not create_schema:
        store.schema(schema)  # raises, naming the schemas there are
    known = list(existing.names) if existing else []
    multi = existing.multi if existing else any(len(r.labels) > 1 for r in rows)
    matcher = ItemMatcher(library)
    labels: dict[int, frozenset[str]] = {}
    splits: dict[int, str] = {}
    by_item: dict[int, str] = {}
    new: list[str] = []
    progress(Progress(0, len(rows), f"matching {len(rows)} rows"))
    for n, r in enumerate(rows):
        if cancel is not None:
            cancel.raise_if_cancelled()
        progress(Progress(n + 1, len(rows)))
        who = f"{r.where}: {r.path}"
        item, reason = matcher.item_of(r)
        if item is None:
            problems.append((who, reason))
            continue
        reason = _check_labels(r.labels, schema, known, multi, create_schema)
        if reason is None and r.split is not None and r.split not in SPLITS:
            reason = f"split {r.split!r} is not one of {', '.join(SPLITS)}"
        if reason is None and r.labels and labels.get(item, set(r.labels)) != set(r.labels):
            reason = f"its item already got other labels from {by_item[item]}"
        if reason is not None:
            problems.append((who, reason))
            continue
        for label in r.labels:
            if label not in known and label not in new:
                new.append(label)
        if r.labels:
            labels[item] = frozenset(r.labels)
            by_item.setdefault(item, r.where)
        if r.split is not None:
            splits[item] = r.split
    if cancel is not None:
        cancel.raise_if_cancelled()  # nothing written yet: a cancelled import changes nothing
    if new:
        store.save_schema(Schema.of(schema, [*known, *new], multi) if existing is None else
                          _extended(existing, new))
    change = store.set_labels(schema, labels, session=session) if labels else None
    if splits:
        store.set_splits(splits)
    for who, reason in problems:
        log.warning("not imported: %s (%s)", who, reason)
    log.info("imported labels of %d items into %r from %s", len(labels), schema, path)
    return ImportReport(len(labels), problems, new, change.id if change else None, schema,
                        len(splits))


def _schema_named_by(rows: list[Row], path: Path) -> str:
    named = sorted({r.schema for r in rows if r.schema})
    if len(named) == 1:
        return named[0]
    which = f"it names {', '.join(named)}" if named else "it names none"
    raise ExchangeError(f"say which schema {path.name} goes into ({which})")


def _extended(s: Schema, new: list[str]) -> Schema:
    """The schema with labels added; the labels it had keep their colours and keys (which
    someone may have chosen), the new ones get the next colours and the keys left free."""
    free = iter([k for k in KEYS if k not in {d.key for d in s.labels}])
    added = tuple(LabelDef(n, PALETTE[(len(s.labels) + i) % len(PALETTE)], next(free, None))
                  for i, n in enumerate(new))
    return Schema(s.name, s.labels + added, s.multi, s.created)


def _check_labels(labels: tuple[str, ...], schema: str, known: list[str], multi: bool,
                  create: bool) -> str | None:
    if len(labels) > 1 and not multi:
        return f"schema {schema!r} is single-label; the row has {', '.join(labels)}"
    for label in labels:
        if label in known:
            continue
        if not create:
            return f"label {label!r} is not in schema {schema!r} (it has {', '.join(known)})"
        try:
            Schema.of("check", [label])
        except SchemaError as exc:
            return str(exc)
    return None


def _format_of(path: Path, fmt: str | None, exporting: bool) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise ExchangeError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        return fmt
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if path.is_dir() or (exporting and not suffix and not path.exists()):
        return "hf"
    raise ExchangeError(f"cannot tell the format of {path.name}: name a .csv or .jsonl file or "
                        "a folder, or give the format (csv, jsonl, hf)")

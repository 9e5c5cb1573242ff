"""What an import of labels reads: the rows of a CSV, JSON Lines file or Hugging Face
`datasets` folder, and the library item each row's file is.

Files come from spreadsheets and scripts, so reading is forgiving where it can be (UTF-8
with or without a byte-order mark, UTF-16 "Unicode text", ";" or tab as the CSV
delimiter, split names such as "val" or "dev") and says what is wrong where it cannot.
A row that cannot be read is reported in `problems` and the others are still read.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mmstudio.core.errors import MmstudioError

_SPLIT_ALIASES = {"train": "train", "training": "train", "validation": "validation",
                  "valid": "validation", "val": "validation", "dev": "validation",
                  "test": "test", "testing": "test"}
_LABEL_SEPARATORS = re.compile(r"[|;,]")  # none of them may appear in a label name


# Defined here, below exchange.py (which re-exports it and raises it on export too), so
# that neither module imports the other's.
class ExchangeError(MmstudioError):
    """A file that cannot be exported to or imported from."""


@dataclass(frozen=True)
class Row:
    where: str  # for reports: "line 3" or "train/metadata.jsonl line 3"
    path: Path
    labels: tuple[str, ...]
    split: str | None = None
    schema: str | None = None
    original: Path | None = None  # the library file an HF export copied


def read_rows(path: Path, fmt: str, problems: list[tuple[str, str]]) -> list[Row]:
    """The rows of a "csv" or "jsonl" file or an "hf" folder; rows that cannot be read
    go to `problems` as (where, reason). Raises ExchangeError when nothing can be read."""
    return _read_hf(path, problems) if fmt == "hf" else _read_table(path, fmt, problems)


class ItemMatcher:
    """Finds the item of a row's file: by path, else by file name and size when unique."""

    def __init__(self, library) -> None:
        rows = library.catalog.query("SELECT path, item_id, size, state, error FROM files")
        self.by_path = {r[0]: (int(r[1]), r[3], r[4]) for r in rows}
        self.by_name: dict[tuple[str, int], list[int]] = {}
        for p, item, size, state, _ in rows:
            if state == "ok":
                self.by_name.setdefault((Path(p).name, int(size)), []).append(int(item))

    def item_of(self, row: Row) -> tuple[int | None, str]:
        for candidate in (row.original, row.path):
            if candidate is None:
                continue
            for p in dict.fromkeys((str(candidate), _resolved(candidate))):
                if p in self.by_path:
                    item, state, error = self.by_path[p]
                    if state == "ok":
                        return item, ""
                    return None, (f"the library could not read it: {error}" if state == "error"
                                  else "it is not indexed yet; finish indexing first")
        name = (row.original or row.path).name
        try:
            size = row.path.stat().st_size
        except OSError:
            return None, "no such file, and no file of the library has its path"
        items = set(self.by_name.get((name, size), ()))
        if len(items) == 1:
            return items.pop(), ""
        if items:
            return None, f"{len(items)} items of the library have a file {name} of this size"
        return None, "not in the library; index its folder first"


def _resolved(path: Path) -> str:
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):  # a symlink loop: the path as given will do
        return str(path)



def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExchangeError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not data.strip():
        raise ExchangeError(f"{path} is empty")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # spreadsheets' "Unicode text" is UTF-16
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ExchangeError(f"{path} is not valid UTF-16 text: {exc.reason}") from exc
    if b"\x00" in data[:8192]:
        raise ExchangeError(f"{path} is not a text file; give a CSV or JSON Lines file")
    try:
        return data.decode("utf-8-sig")  # with or without the byte-order mark
    except UnicodeDecodeError as exc:
        raise ExchangeError(
            f"{path} is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}); "
            "save it as UTF-8") from exc


def _read_table(path: Path, fmt: str, problems: list[tuple[str, str]],
                base: Path | None = None, prefix: str = "", split: str | None = None
                ) -> list[Row]:
    text = _read_text(path)
    base = base or path.parent
    records = _csv_records(text, path) if fmt == "csv" else _jsonl_records(text, path, problems)
    rows = []
    for where, rec in records:
        where = prefix + where
        try:
            rows.append(_row(rec, where, base, split))
        except ValueError as exc:
            problems.append((where, str(exc)))
    if not rows and not problems:
        raise ExchangeError(f"{path} has no rows")
    return rows


def _csv_records(text: str, path: Path) -> list[tuple[str, dict]]:
    header = text.splitlines()[0]
    # Spreadsheets in some locales write ";" or tabs; the header shows which it is.
    delimiter = max(",;\t", key=header.count)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns = [c.strip() for c in reader.fieldnames or []]
    reader.fieldnames = columns
    if not {"path", "file_name"} & set(columns) or not {"labels", "label"} & set(columns):
        raise ExchangeError(f"{path.name} needs a 'path' and a 'labels' column; it has "
                            f"{', '.join(repr(c) for c in columns) or 'none'}")
    try:
        return [(f"line {reader.line_num}", rec) for rec in reader]
    except csv.Error as exc:
        raise ExchangeError(f"{path.name} is not valid CSV: {exc}") from exc


def _jsonl_records(text: str, path: Path, problems: list[tuple[str, str]]
                   ) -> list[tuple[str, dict]]:
    records, bad = [], 0
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            bad += 1
            problems.append((f"line {n}", f"not valid JSON ({exc.msg})"))
            continue
        if not isinstance(rec, dict):
            bad += 1
            problems.append((f"line {n}", "not a JSON object"))
            continue
        records.append((f"line {n}", rec))
    if not records:
        raise ExchangeError(f"{path.name} is not JSON Lines: no line of it is a JSON object")
    return records


def _row(rec: Mapping, where: str, base: Path, split: str | None) -> Row:
    name = rec.get("path") or rec.get("file_name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("no path")
    raw = rec.get("labels", rec.get("label"))
    if raw is None:
        labels: list[str] = []
    elif isinstance(raw, str):
        labels = _LABEL_SEPARATORS.split(raw)
    elif isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        labels = raw
    else:
        raise ValueError(f"labels must be text or a list of text, not {raw!r}")
    given = rec.get("split")
    if given is not None and not isinstance(given, str):
        raise ValueError(f"split must be text, not {given!r}")
    given = (given or "").strip()
    original = rec.get("mmstudio_path")
    schema = rec.get("schema")
    return Row(where, base / Path(name.strip()).expanduser(),
                tuple(dict.fromkeys(x.strip() for x in labels if x.strip())),
                _SPLIT_ALIASES.get(given.lower(), given) if given else split,
                schema.strip() if isinstance(schema, str) and schema.strip() else None,
                Path(original) if isinstance(original, str) and original else None)


def _read_hf(folder: Path, problems: list[tuple[str, str]]) -> list[Row]:
    found = sorted(p for name in ("metadata.jsonl", "metadata.csv") for p in folder.rglob(name))
    if not found:
        raise ExchangeError(f"{folder} has no metadata.jsonl; export a dataset with "
                            "`mmstudio labels export` or give a CSV or JSON Lines file")
    rows = []
    for meta in found:
        rel = meta.relative_to(folder)
        # the ImageFolder convention: the split is the first folder under the root
        split = _SPLIT_ALIASES.get(rel.parts[0].lower()) if len(rel.parts) > 1 else None
        fmt = "csv" if meta.suffix == ".csv" else "jsonl"
        try:
            rows += _read_table(meta, fmt, problems, meta.parent, f"{rel.as_posix()} ", split)
        except ExchangeError as exc:  # one bad metadata file does not stop the others
            problems.append((rel.as_posix(), str(exc)))
    if not rows and problems:
        raise ExchangeError(f"no metadata file in {folder} could be read: {problems[0][1]}")
    return rows

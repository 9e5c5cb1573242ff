"""Labels in the catalog: schemas, what people said, the journal, suggestions, splits.

Every change to labels is one transaction that writes the labels and a journal entry
together, synced to disk (`durable`), so a change the caller was told about survives
a crash, a SIGKILL or a power cut. The journal makes changes undoable: each entry
keeps the labels of its items before and after; a session's undo restores the
"before" of its latest change, redo re-applies the first undone one, and a new change
drops the session's undone ones (as an undo stack does).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from mmstudio.core.catalog import Catalog
from mmstudio.labels.schema import Schema, SchemaError

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Change:
    """One journal entry: the labels of some items before and after."""

    id: str
    session: str
    schema: str
    before: Mapping[int, frozenset[str]]
    after: Mapping[int, frozenset[str]]
    at: float
    state: str = "done"

    @property
    def items(self) -> tuple[int, ...]:
        return tuple(self.after)


@dataclass(frozen=True)
class Suggestion:
    """What a model proposes for an item: label, confidence in [0, 1], and who said it
    ("knn", "zero-shot", "classifier", "fusion:attention:v2")."""

    label: str
    score: float
    source: str


class LabelStore:
    """The labels of one library (thread-safe through the catalog's lock)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    # -- schemas --------------------------------------------------------------------

    def schemas(self) -> list[Schema]:
        rows = self.catalog.query("SELECT name, multi, labels, created FROM schemas ORDER BY name")
        return [Schema(r[0], Schema.defs_from_json(r[2]), bool(r[1]), r[3]) for r in rows]

    def schema(self, name: str) -> Schema:
        for s in self.schemas():
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.schemas()) or "none yet"
        raise SchemaError(f"no label schema {name!r} in this library ({known}); "
                          "create one with `mmstudio labels schema NAME LABEL...`")

    def save_schema(self, schema: Schema) -> None:
        """Create a schema or change one. Labels still in use cannot be removed, and a
        schema whose items carry several labels cannot become single-label."""
        with self.catalog.transaction(durable=True) as db:
            if db.execute("SELECT 1 FROM schemas WHERE name = ?", (schema.name,)).fetchone():
                for label, n in db.execute(
                        "SELECT label, COUNT(*) FROM labels WHERE schema = ? GROUP BY label",
                        (schema.name,)).fetchall():
                    if label not in schema.names:
                        raise SchemaError(f"{n} items carry {label!r}; relabel them before "
                                          "removing it from the schema")
                if not schema.multi and db.execute(
                        "SELECT 1 FROM labels WHERE schema = ? GROUP BY item_id "
                        "HAVING COUNT(*) > 1", (schema.name,)).fetchone():
                    raise SchemaError(f"items in {schema.name!r} carry several labels; it "
                                      "must stay multi-label")
                db.execute("UPDATE schemas SET multi = ?, labels = ? WHERE name = ?",
                           (int(schema.multi), schema.labels_json(), schema.name))
            else:
                db.execute("INSERT INTO schemas (name, multi, labels, created) VALUES (?,?,?,?)",
                           (schema.name, int(schema.multi), schema.labels_json(), time.time()))

    def delete_schema(self, name: str) -> None:
        with self.catalog.transaction(durable=True) as db:
            for table in ("labels", "suggestions", "label_journal"):
                db.execute(f"DELETE FROM {table} WHERE schema = ?", (name,))
            db.execute("DELETE FROM schemas WHERE name = ?", (name,))

    # -- labels ---------------------------------------------------------------------

    def labels(self, schema: str, item_ids: Iterable[int] | None = None) -> dict[int, frozenset[str]]:
        """The labels items carry in `schema` (items without any are left out)."""
        rows = self.catalog.query("SELECT item_id, label FROM labels WHERE schema = ?", (schema,))
        wanted = None if item_ids is None else {int(i) for i in item_ids}
        found: dict[int, set[str]] = {}
        for item_id, label in rows:
            if wanted is None or item_id in wanted:
                found.setdefault(int(item_id), set()).add(label)
        return {i: frozenset(v) for i, v in found.items()}

    def counts(self, schema: str) -> dict[str, int]:
        rows = self.catalog.query(
            "SELECT label, COUNT(*) FROM labels WHERE schema = ? GROUP BY label", (schema,))
        return {r[0]: int(r[1]) for r in rows}

    def set_labels(self, schema: str, labels: Mapping[int, Iterable[str]], session: str = "",
                   change_id: str | None = None) -> Change:
        """Give items exactly these labels (an empty set clears them)."""
        wanted = {int(i): frozenset(v) for i, v in labels.items()}
        return self._apply(self.schema(schema), list(wanted), lambda item, _: wanted[item],
                           session, change_id)

    def apply_label(self, schema: str, item_ids: Sequence[int], label: str, mode: str = "set",
                    session: str = "", change_id: str | None = None) -> Change:
        """One label on many items (bulk labeling).

        mode: "set" (the item's only label in a single-label schema; added in a
        multi-label one), "add", "remove" or "toggle".
        """
        s = self.schema(schema)
        s.label(label)
        single = frozenset({label})

        def after(_: int, before: frozenset[str]) -> frozenset[str]:
            if mode == "remove" or (mode == "toggle" and label in before):
                return before - single
            if not s.multi:
                return single
            return before | single

        if mode not in ("set", "add", "remove", "toggle"):
            raise ValueError(f"mode {mode!r}")
        return self._apply(s, list(dict.fromkeys(int(i) for i in item_ids)), after, session,
                           change_id)

    def _apply(self, s: Schema, items: list[int],
               after_of: Callable[[int, frozenset[str]], frozenset[str]],
               session: str, change_id: str | None) -> Change:
        schema = s.name
        now = time.time()
        with self.catalog.transaction(durable=True) as db:
            before = self._current(db, schema, items)
            after = {i: s.check(after_of(i, before[i])) for i in items}
            change = Change(change_id or uuid.uuid4().hex, session, schema, before, after, now)
            self._write(db, schema, after, now)
            db.execute("UPDATE label_journal SET state = 'dropped' WHERE session = ? "
                       "AND state = 'undone'", (session,))
            db.execute("INSERT INTO label_journal (change, session, schema, before, after, at) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (change.id, session, schema, _dump(before), _dump(after), now))
        return change

    @staticmethod
    def _current(db, schema: str, items: list[int]) -> dict[int, frozenset[str]]:
        found: dict[int, set[str]] = {i: set() for i in items}
        for lo in range(0, len(items), 500):
            chunk = items[lo : lo + 500]
            for item_id, label in db.execute(
                    f"SELECT item_id, label FROM labels WHERE schema = ? AND item_id IN "
                    f"({','.join('?' * len(chunk))})", [schema, *chunk]).fetchall():
                found[int(item_id)].add(label)
        return {i: frozenset(v) for i, v in found.items()}

    @staticmethod
    def _write(db, schema: str, labels: Mapping[int, frozenset[str]], now: float) -> None:
        for item_id, chosen in labels.items():
            db.execute("DELETE FROM labels WHERE schema = ? AND item_id = ? AND label NOT IN "
                       f"({','.join('?' * len(chosen))})", [schema, item_id, *chosen])
            db.executemany("INSERT OR IGNORE INTO labels (item_id, schema, label, at) "
                           "VALUES (?, ?, ?, ?)", [(item_id, schema, n, now) for n in chosen])

    # -- journal: undo and redo -------------------------------------------------------

    def journal(self, session: str | None = None, schema: str | None = None) -> list[Change]:
        sql = "SELECT change, session, schema, before, after, at, state FROM label_journal"
        where, args = [], []
        if session is not None:
            where.append("session = ?")
            args.append(session)
        if schema is not None:
            where.append("schema = ?")
            args.append(schema)
        rows = self.catalog.query(sql + (" WHERE " + " AND ".join(where) if where else "")
                                  + " ORDER BY seq", args)
        return [Change(r[0], r[1], r[2], _load(r[3]), _load(r[4]), r[5], r[6]) for r in rows]

    def revert(self, change_id: str) -> Change:
        """Undo one change: its items get their labels from before it."""
        return self._flip(change_id, "done", "undone", "before")

    def reapply(self, change_id: str) -> Change:
        """Redo one undone change."""
        return self._flip(change_id, "undone", "done", "after")

    def undo(self, session: str) -> Change | None:
        """Undo the session's latest change still in effect (None if there is none)."""
        rows = self.catalog.query("SELECT change FROM label_journal WHERE session = ? AND "
                                  "state = 'done' ORDER BY seq DESC LIMIT 1", (session,))
        return self.revert(rows[0][0]) if rows else None

    def redo(self, session: str) -> Change | None:
        rows = self.catalog.query("SELECT change FROM label_journal WHERE session = ? AND "
                                  "state = 'undone' ORDER BY seq LIMIT 1", (session,))
        return self.reapply(rows[0][0]) if rows else None

    def _flip(self, change_id: str, from_state: str, to_state: str, side: str) -> Change:
        now = time.time()
        with self.catalog.transaction(durable=True) as db:
            row = db.execute("SELECT change, session, schema, before, after, at, state FROM "
                             "label_journal WHERE change = ?", (change_id,)).fetchone()
            if row is None or row[6] != from_state:
                state = row[6] if row else "unknown"
                raise SchemaError(f"change {change_id} is {state}, not {from_state}")
            change = Change(row[0], row[1], row[2], _load(row[3]), _load(row[4]), row[5], to_state)
            self._write(db, change.schema, change.before if side == "before" else change.after,
                        now)
            db.execute("UPDATE label_journal SET state = ? WHERE change = ?", (to_state, change_id))
        return change

    # -- suggestions ------------------------------------------------------------------

    def suggestions(self, schema: str, item_ids: Iterable[int] | None = None
                    ) -> dict[int, Suggestion]:
        rows = self.catalog.query(
            "SELECT item_id, label, score, source FROM suggestions WHERE schema = ?", (schema,))
        wanted = None if item_ids is None else {int(i) for i in item_ids}
        return {int(r[0]): Suggestion(r[1], float(r[2]), r[3]) for r in rows
                if wanted is None or r[0] in wanted}

    def set_suggestions(self, schema: str, suggestions: Mapping[int, Suggestion]) -> None:
        """Replace the suggestions of these items (one per item: the most likely label)."""
        now = time.time()
        with self.catalog.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO suggestions (item_id, schema, label, score, source, at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(int(i), schema, s.label, float(s.score), s.source, now)
                 for i, s in suggestions.items()])

    # -- splits -----------------------------------------------------------------------

    def splits(self, item_ids: Iterable[int] | None = None) -> dict[int, str]:
        rows = self.catalog.query("SELECT item_id, split FROM splits")
        wanted = None if item_ids is None else {int(i) for i in item_ids}
        return {int(r[0]): r[1] for r in rows if wanted is None or r[0] in wanted}

    def set_splits(self, splits: Mapping[int, str]) -> None:
        for split in set(splits.values()):
            if split not in SPLITS:
                raise SchemaError(f"split {split!r} is not one of {', '.join(SPLITS)}")
        with self.catalog.transaction(durable=True) as db:
            db.executemany("INSERT OR REPLACE INTO splits (item_id, split) VALUES (?, ?)",
                           [(int(i), s) for i, s in splits.items()])


def _dump(labels: Mapping[int, frozenset[str]]) -> str:
    return json.dumps({str(i): sorted(v) for i, v in labels.items()})


def _load(text: str) -> dict[int, frozenset[str]]:
    return {int(i): frozenset(v) for i, v in json.loads(text).items()}

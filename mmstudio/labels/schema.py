"""Label schemas: a named set of labels, single- or multi-label, with colours and keys.

A schema belongs to a library (stored in its catalog). Each label has a colour (for
chips, the map and the confusion matrix) and, for the first nine, a keyboard key
1–9 that assigns it in a labeling session.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from mmstudio.core.errors import MmstudioError

# Distinct colours for up to 12 labels (Tableau 10 + two), then they repeat.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
           "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#17becf", "#bcbd22")
KEYS = tuple("123456789")
_NAME = re.compile(r"^[^\s,;|/\\][^,;|/\\]{0,62}$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


class SchemaError(MmstudioError):
    pass


@dataclass(frozen=True)
class LabelDef:
    name: str
    colour: str
    key: str | None = None  # "1".."9", or None for labels past the ninth


@dataclass(frozen=True)
class Schema:
    name: str
    labels: tuple[LabelDef, ...]
    multi: bool = False
    created: float = field(default=0.0, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name, "schema")
        if not self.labels:
            raise SchemaError(f"schema {self.name!r} has no labels; give at least one")
        names = [d.name for d in self.labels]
        for n in names:
            _check_name(n, "label")
        if len(set(names)) != len(names):
            raise SchemaError(f"schema {self.name!r} names a label twice")
        keys = [d.key for d in self.labels if d.key]
        if len(set(keys)) != len(keys) or any(k not in KEYS for k in keys):
            raise SchemaError(f"schema {self.name!r}: keys must be distinct, from 1 to 9")
        if any(not _COLOUR.match(d.colour) for d in self.labels):
            raise SchemaError(f"schema {self.name!r}: colours are #rrggbb")

    @classmethod
    def of(cls, name: str, labels: Sequence[str], multi: bool = False) -> Schema:
        """A schema with default colours and keys 1–9 in the order given."""
        defs = tuple(LabelDef(n.strip(), PALETTE[i % len(PALETTE)], KEYS[i] if i < 9 else None)
                     for i, n in enumerate(labels))
        return cls(name.strip(), defs, multi)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.labels)

    def label(self, name: str) -> LabelDef:
        for d in self.labels:
            if d.name == name:
                return d
        raise SchemaError(f"schema {self.name!r} has no label {name!r} "
                          f"(it has {', '.join(self.names)})")

    def by_key(self, key: str) -> LabelDef | None:
        return next((d for d in self.labels if d.key == key), None)

    def colour(self, name: str) -> str:
        return self.label(name).colour

    def check(self, labels: Sequence[str]) -> frozenset[str]:
        """The labels as a set, after checking they are this schema's and fit it."""
        chosen = frozenset(labels)
        for n in chosen:
            self.label(n)
        if not self.multi and len(chosen) > 1:
            raise SchemaError(f"schema {self.name!r} is single-label; got {sorted(chosen)}")
        return chosen

    def labels_json(self) -> str:
        return json.dumps([asdict(d) for d in self.labels])

    @staticmethod
    def defs_from_json(text: str) -> tuple[LabelDef, ...]:
        return tuple(LabelDef(**d) for d in json.loads(text))


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name) or name != name.strip():
        raise SchemaError(
            f"{what} name {name!r} is not allowed: 1–63 characters, no leading or trailing "
            "space, none of , ; | / \\")

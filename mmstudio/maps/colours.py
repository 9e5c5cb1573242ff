"""What colours a map's points: modality, label, predicted label, confidence, search score.

Categories get a fixed colour each (labels their schema's colour); values in [lo, hi]
go through viridis (perceptually uniform, readable by most colour-blind people). An
item with no category or value (unlabeled, not a result) is a dim grey, so that what
has one stands out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mmstudio.core.errors import MmstudioError
from mmstudio.core.items import main_file
from mmstudio.core.segments import MODALITY_HEX
from mmstudio.explain.colormap import ANCHORS

MODES = ("modality", "label", "predicted", "confidence", "score")
MODE_NAMES = {"modality": "Modality", "label": "Label", "predicted": "Predicted label",
              "confidence": "Confidence", "score": "Search score"}
# modes that need a label schema
SCHEMA_MODES = ("label", "predicted", "confidence")
NONE_HEX = "#5f6368"


def rgb_of(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def viridis(values: np.ndarray) -> np.ndarray:
    """(n,) values in [0, 1] -> (n, 3) uint8."""
    stops = np.array([rgb_of(h) for h in ANCHORS["viridis"]], np.float32)
    t = np.clip(np.nan_to_num(np.asarray(values, np.float32)), 0, 1) * (len(stops) - 1)
    lo = np.minimum(t.astype(np.int64), len(stops) - 2)
    frac = (t - lo)[:, None]
    return np.rint(stops[lo] * (1 - frac) + stops[lo + 1] * frac).astype(np.uint8)


@dataclass(frozen=True)
class Category:
    name: str
    colour: str  # "#rrggbb"
    count: int


@dataclass(frozen=True)
class Colouring:
    """Per-point colours (rows follow the layout's item ids) and the legend."""

    mode: str
    rgb: np.ndarray  # (N, 3) uint8
    categories: tuple[Category, ...] = ()  # categorical modes
    values: np.ndarray | None = None  # (N,) float, NaN where none (value modes)
    value_range: tuple[float, float] = (0.0, 1.0)
    missing: int = 0  # items without a category or value
    title: str = ""


def _categorical(mode: str, names: Sequence[str | None], palette: Mapping[str, str],
                 order: Sequence[str], none_name: str, title: str) -> Colouring:
    rgb = np.empty((len(names), 3), np.uint8)
    rgb[:] = rgb_of(NONE_HEX)
    lookup = {name: rgb_of(colour) for name, colour in palette.items()}
    for row, name in enumerate(names):
        if name is not None:
            rgb[row] = lookup[name]
    counts = Counter(names)
    categories = [Category(n, palette[n], counts[n]) for n in order if counts.get(n)]
    if counts.get(None):
        categories.append(Category(none_name, NONE_HEX, counts[None]))
    return Colouring(mode, rgb, tuple(categories), missing=counts.get(None, 0), title=title)


def _valued(mode: str, values: np.ndarray, lo: float, hi: float, title: str) -> Colouring:
    have = ~np.isnan(values)
    rgb = np.empty((len(values), 3), np.uint8)
    rgb[:] = rgb_of(NONE_HEX)
    span = hi - lo if hi > lo else 1.0
    rgb[have] = viridis((values[have] - lo) / span)
    return Colouring(mode, rgb, values=values, value_range=(lo, hi),
                     missing=int((~have).sum()), title=title)


def colour_items(library, item_ids: Sequence[int] | np.ndarray, mode: str, *,
                 schema: str | None = None, scores: Mapping[int, float] | None = None,
                 progress=None, cancel=None) -> Colouring:
    """The colours of these items in `mode` (a job: it reads the catalog).

    schema: the label schema, for label, predicted and confidence. scores: the current
    search's {item: score}, for score.
    """
    ids = [int(i) for i in np.asarray(item_ids).reshape(-1)]
    if mode not in MODES:
        raise MmstudioError(f"unknown colour mode {mode!r}; use one of {', '.join(MODES)}")
    if mode == "modality":
        files = library.catalog.item_files(None)
        names = [main_file(files[i])[1] if i in files else None for i in ids]
        return _categorical(mode, names, MODALITY_HEX, list(MODALITY_HEX), "unknown",
                            "Modality")
    if mode == "score":
        scores = scores or {}
        values = np.array([scores.get(i, np.nan) for i in ids], np.float64)
        have = values[~np.isnan(values)]
        lo, hi = (float(have.min()), float(have.max())) if len(have) else (0.0, 1.0)
        return _valued(mode, values, lo, hi, "Search score")
    if schema is None:
        raise MmstudioError("choose a label schema to colour by labels or predictions")
    store = library.labels
    s = store.schema(schema)
    if mode == "label":
        labels = store.labels(schema)
        names = []
        for i in ids:
            mine = labels.get(i, frozenset())
            names.append(next((n for n in s.names if n in mine), None))
        return _categorical(mode, names, {d.name: d.colour for d in s.labels}, s.names,
                            "unlabeled", f"Label ({schema})")
    suggestions = store.suggestions(schema)
    if mode == "predicted":
        names = [suggestions[i].label if i in suggestions and suggestions[i].label in s.names
                 else None for i in ids]
        return _categorical(mode, names, {d.name: d.colour for d in s.labels}, s.names,
                            "no prediction", f"Predicted ({schema})")
    values = np.array([suggestions[i].score if i in suggestions else np.nan for i in ids])
    return _valued(mode, values, 0.0, 1.0, f"Confidence ({schema})")

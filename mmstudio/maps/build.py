"""Map jobs: fit a space's layout, keep it in the library, bring it up to date.

A layout is cached as `maps/<space>.<method>.npz` in the library folder (numpy arrays
only, read with allow_pickle=False). Opening a map loads the cache and then places
what changed since it was written: new items, items whose files were indexed again
(their vector moved), and drops items that are gone. Nothing already placed moves.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmstudio.core.errors import MmstudioError
from mmstudio.core.item_vectors import mean_vectors
from mmstudio.core.jobs import CancelToken, Progress, ProgressCallback, no_progress
from mmstudio.maps.layout import METHODS, Layout, fit

log = logging.getLogger(__name__)

CACHE_DIR = "maps"
FORMAT = 1
# segments of each kind looked up to learn which kinds a space holds
PROBE = 16
_ARRAYS = ("item_ids", "xy", "mean", "basis", "anchor_xy", "anchors", "anchor_ids")


@dataclass(frozen=True)
class MapState:
    """A layout as a job returns it, with what the job changed."""

    layout: Layout
    added: int = 0  # items placed that were not on the map
    moved: int = 0  # items placed again because their files were indexed again
    removed: int = 0  # items gone from the library (or from the space)
    seconds: float = 0.0
    fitted_now: bool = False


# -- the cache ----------------------------------------------------------------------


def cache_path(library_path: Path, space: str, method: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", space)
    return Path(library_path) / CACHE_DIR / f"{safe}.{method}.npz"


def save(layout: Layout, library_path: Path) -> Path:
    """Write the layout (to a temporary file, then renamed: a crash leaves the old one)."""
    path = cache_path(library_path, layout.space, layout.method)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "space": layout.space, "method": layout.method,
            "fitted": layout.fitted, "stamp": layout.stamp, "created": layout.created}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, meta=np.array(json.dumps(meta)),
                 **{name: getattr(layout, name) for name in _ARRAYS})
    os.replace(tmp, path)
    return path


def load(library_path: Path, space: str, method: str) -> Layout | None:
    """The cached layout, or None if there is none or it cannot be read (it is refitted)."""
    path = cache_path(library_path, space, method)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {name: np.array(data[name]) for name in _ARRAYS}
        if meta.get("format") != FORMAT or meta.get("space") != space:
            raise ValueError(f"format {meta.get('format')}, space {meta.get('space')!r}")
        n = len(arrays["item_ids"])
        if arrays["xy"].shape != (n, 2) or arrays["basis"].shape[1:] != arrays["mean"].shape:
            raise ValueError("array shapes do not agree")
        return Layout(space=space, method=method, fitted=int(meta["fitted"]),
                      stamp=float(meta["stamp"]), created=float(meta["created"]),
                      **{k: v for k, v in arrays.items()})
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("map cache %s is unreadable (%s); it will be computed again", path, exc)
        return None


# -- reading vectors ------------------------------------------------------------------


def space_kinds(library, space: str) -> tuple[str, ...]:
    """The kinds of segment (image, text, audio) that have vectors in `space`.

    A file records every space its indexing job wrote, not which of its segments went
    where (a video's sound has no vector in an image space): a few segments of each
    kind are looked up in the store.
    """
    found = []
    for kind in ("image", "text", "audio"):
        sample = library.catalog.space_sample(space, kind, PROBE)
        if sample and library.store.vectors(sample, space):
            found.append(kind)
    return tuple(found)


def map_spaces(library) -> dict[str, int]:
    """{space: items with a vector in it} for the spaces of this library, largest first."""
    counts = {}
    for space in library.store.spaces:
        if n := library.catalog.space_item_count(space, space_kinds(library, space)):
            counts[space] = n
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def read_space(library, space: str, only: set[int] | None = None, *,
               progress: ProgressCallback = no_progress, cancel: CancelToken | None = None
               ) -> tuple[np.ndarray, np.ndarray, float]:
    """(item ids, (N, d) unit vectors, newest indexing time) of the items in `space`
    (those in `only`, if given). Items none of whose segments has a vector are left out."""
    dims = library.store.spaces
    if space not in dims:
        raise MmstudioError(f"this library has no space {space!r}")
    rows = library.catalog.space_segments(space, space_kinds(library, space))
    if only is not None:
        rows = [r for r in rows if r[0] in only]
    ids = np.array(sorted({r[0] for r in rows}), np.int64)
    where = {int(i): k for k, i in enumerate(ids)}
    pairs = [(where[item], seg) for item, seg, _ in rows]
    stamp = max((r[2] for r in rows), default=0.0)
    vectors, present = mean_vectors(library.store, space, pairs, len(ids), dims[space],
                                    progress=progress, cancel=cancel,
                                    message=f"reading {space} vectors")
    return ids[present], vectors[present], stamp


# -- jobs --------------------------------------------------------------------------


def _say(progress: ProgressCallback) -> Callable[[str], None]:
    return lambda message: progress(Progress(0, 0, message))


def compute_map(library, space: str, method: str = "pca", *, seed: int | None = 0,
                progress: ProgressCallback = no_progress, cancel: CancelToken | None = None
                ) -> MapState:
    """Fit a fresh layout of `space` and cache it (a job)."""
    if method not in METHODS:
        raise MmstudioError(f"unknown map method {method!r}; use {' or '.join(METHODS)}")
    started = time.perf_counter()
    ids, vectors, stamp = read_space(library, space, progress=progress, cancel=cancel)
    if cancel is not None:
        cancel.raise_if_cancelled()
    progress(Progress(0, 0, f"fitting {method.upper()} on {len(ids):,} items"))
    layout = fit(space, ids, vectors, method, seed=seed, stamp=stamp, say=_say(progress))
    if cancel is not None:
        cancel.raise_if_cancelled()  # a fit cannot stop half-way; its result is dropped
    save(layout, library.path)
    return MapState(layout, added=len(ids), seconds=time.perf_counter() - started,
                    fitted_now=True)


def update_map(library, layout: Layout, *, progress: ProgressCallback = no_progress,
               cancel: CancelToken | None = None) -> MapState:
    """Place what changed since `layout` was written, without refitting (a job)."""
    started = time.perf_counter()
    rows = library.catalog.space_segments(layout.space, space_kinds(library, layout.space))
    current = {r[0] for r in rows}
    known = set(layout.item_ids.tolist())
    changed = {r[0] for r in rows if r[2] > layout.stamp}
    new = current - known
    moved = (changed & known)
    removed = np.array(sorted(known - current), np.int64)
    ids = np.zeros(0, np.int64)
    xy = np.zeros((0, 2), np.float32)
    stamp = layout.stamp
    if new or moved:
        ids, vectors, stamp = read_space(library, layout.space, new | moved,
                                         progress=progress, cancel=cancel)
        xy = layout.place(vectors)
    if not len(ids) and not len(removed):
        return MapState(layout, seconds=time.perf_counter() - started)
    placed = set(ids.tolist())
    updated = layout.merged(ids, xy, removed, stamp)
    save(updated, library.path)
    return MapState(updated, added=len(placed & new), moved=len(placed & moved),
                    removed=len(removed), seconds=time.perf_counter() - started)


def open_map(library, space: str, method: str = "pca", *,
             progress: ProgressCallback = no_progress, cancel: CancelToken | None = None
             ) -> MapState | None:
    """The cached layout brought up to date, or None when none is cached (a job)."""
    layout = load(library.path, space, method)
    return None if layout is None else update_map(library, layout, progress=progress,
                                                  cancel=cancel)

"""Map jobs: fit a space's layout, keep it in the library, bring it up to date.

A layout is cached as `maps/<space>.<method>.npz` in the library folder (numpy arrays
only, read with allow_pickle=False). Opening a map loads the cache and then places
what changed since it was written: new items, items whose files were indexed again
(their vector moved), and drops items that are gone. Nothing already placed moves.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmstudio.core.errors import MmstudioError
from mmstudio.core.item_vectors import mean_vectors, space_kinds
from mmstudio.core.jobs import CancelToken, Progress, ProgressCallback, no_progress
from mmstudio.maps.layout import METHOD_NAMES, Layout, fit

log = logging.getLogger(__name__)

CACHE_DIR = "maps"
FORMAT = 2  # 2: segments per item
# A PCA map fitted on fewer items than this, or on less than half of the items now in
# its space, is fitted again when it is opened (PCA is cheap): a map made while the
# first folder was still being added would otherwise squeeze everything onto the axes
# of its first few items. UMAP maps only say so (a refit takes minutes).
REFIT_BELOW = 3
REFIT_GROWTH = 2.0
_ARRAYS = ("item_ids", "xy", "mean", "basis", "anchor_xy", "anchors", "anchor_ids",
           "segments")


@dataclass(frozen=True)
class MapState:
    """A layout as a job returns it, with what the job changed."""

    layout: Layout
    added: int = 0  # items placed that were not on the map
    moved: int = 0  # items placed again: a file of theirs was indexed again, or left
    removed: int = 0  # items gone from the library (or from the space)
    seconds: float = 0.0
    fitted_now: bool = False


# -- the cache ----------------------------------------------------------------------


def cache_path(library_path: Path, space: str, method: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", space)
    if safe != space:  # "a/b" and "a_b" must not share a file
        safe += "-" + hashlib.sha1(space.encode()).hexdigest()[:8]
    return Path(library_path) / CACHE_DIR / f"{safe}.{method}.npz"


def save(layout: Layout, library_path: Path) -> Path:
    """Write the layout (to a temporary file, then renamed: a crash leaves the old one)."""
    path = cache_path(library_path, layout.space, layout.method)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "space": layout.space, "method": layout.method,
            "fitted": layout.fitted, "placed": layout.placed, "stamp": layout.stamp}
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)),
                     **{name: getattr(layout, name) for name in _ARRAYS})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(library_path: Path, space: str, method: str, dim: int | None = None) -> Layout | None:
    """The cached layout, or None if there is none, it cannot be read, or it does not fit
    the space (`dim`, when given): then it is fitted again."""
    path = cache_path(library_path, space, method)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if (meta.get("format"), meta.get("space"), meta.get("method")) != \
                    (FORMAT, space, method):
                raise ValueError(f"it is format {meta.get('format')} of {meta.get('space')!r} "
                                 f"({meta.get('method')})")
            arrays = {name: np.array(data[name]) for name in _ARRAYS}
        _check(arrays, method, dim)
        return Layout(space=space, method=method, fitted=int(meta["fitted"]),
                      placed=int(meta.get("placed", 0)), stamp=float(meta["stamp"]),
                      **{k: v for k, v in arrays.items()})
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("map cache %s is unreadable (%s); it will be computed again", path, exc)
        return None


def _check(a: dict[str, np.ndarray], method: str, dim: int | None) -> None:
    n, d = len(a["item_ids"]), a["mean"].shape[0] if a["mean"].ndim == 1 else -1
    k = len(a["anchor_ids"])
    shapes = {"xy": (n, 2), "basis": (2 if method == "pca" else 0, d), "anchor_xy": (k, 2),
              "anchors": (k, d), "segments": (n,)}
    for name, shape in shapes.items():
        if a[name].shape != shape:
            raise ValueError(f"{name} is {a[name].shape}, not {shape}")
    if dim is not None and d != dim:
        raise ValueError(f"its vectors are {d}-d; the space's are {dim}-d")
    if not all(np.isfinite(a[name]).all() for name in ("xy", "mean", "basis", "anchor_xy")):
        raise ValueError("it holds values that are not finite")


# -- reading vectors ------------------------------------------------------------------


def map_spaces(library) -> dict[str, int]:
    """{space: items with a vector in it} for the spaces of this library, largest first."""
    counts = {}
    for space in library.store.spaces:
        if n := library.catalog.space_item_count(space, space_kinds(library, space)):
            counts[space] = n
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def read_space(library, space: str, only: set[int] | None = None, *,
               kinds: tuple[str, ...] | None = None,
               rows: list[tuple[int, int, float]] | None = None,
               progress: ProgressCallback = no_progress, cancel: CancelToken | None = None
               ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """(item ids, (N, d) unit vectors, newest indexing time, segments per item) of the
    items in `space` (those in `only`, if given). Items none of whose segments has a
    vector are left out. kinds, rows: the space's kinds of segment and its
    `catalog.space_segments`, when the caller has read them already."""
    dims = library.store.spaces
    if space not in dims:
        raise MmstudioError(f"this library has no space {space!r}")
    if rows is None:
        kinds = space_kinds(library, space) if kinds is None else kinds
        rows = library.catalog.space_segments(space, kinds)
    if only is not None:
        rows = [r for r in rows if r[0] in only]
    per_item = Counter(r[0] for r in rows)
    ids = np.array(sorted(per_item), np.int64)
    counts = np.array([per_item[i] for i in ids.tolist()], np.int32)
    where = {int(i): k for k, i in enumerate(ids)}
    pairs = [(where[item], seg) for item, seg, _ in rows]
    stamp = max((r[2] for r in rows), default=0.0)
    vectors, present = mean_vectors(library.store, space, pairs, len(ids), dims[space],
                                    progress=progress, cancel=cancel,
                                    message=f"reading {space} vectors")
    finite = np.isfinite(vectors).all(axis=1)
    if (bad := int((present & ~finite).sum())):
        log.warning("%d items of %s have vectors that are not finite; left off the map",
                    bad, space)
    present &= finite
    return ids[present], vectors[present], stamp, counts[present]


# -- jobs --------------------------------------------------------------------------


def compute_map(library, space: str, method: str = "pca", *, seed: int | None = 0,
                rows: list[tuple[int, int, float]] | None = None,
                progress: ProgressCallback = no_progress, cancel: CancelToken | None = None
                ) -> MapState:
    """Fit a fresh layout of `space` and cache it (a job). rows: the space's
    `catalog.space_segments`, when the caller has read them already."""
    started = time.perf_counter()
    ids, vectors, stamp, segments = read_space(library, space, rows=rows, progress=progress,
                                               cancel=cancel)
    if cancel is not None:
        cancel.raise_if_cancelled()
    progress(Progress(0, 0, f"fitting {METHOD_NAMES.get(method, method)} on {len(ids):,} items"))
    layout = fit(space, ids, vectors, method, seed=seed, stamp=stamp, segments=segments,
                 progress=progress, cancel=cancel)
    if cancel is not None:
        cancel.raise_if_cancelled()
    save(layout, library.path)
    return MapState(layout, added=len(ids), seconds=time.perf_counter() - started,
                    fitted_now=True)


def update_map(library, layout: Layout, *, progress: ProgressCallback = no_progress,
               cancel: CancelToken | None = None) -> MapState:
    """Place what changed since `layout` was written, without refitting (a job).

    Items new to the map are placed; items whose files were indexed after the newest
    indexing the layout read (its stamp: the catalog's indexed_at, a precise clock on
    every platform Python supports), or that lost a file (their point averages another
    number of segments), are placed again. Nothing is written when nothing changed.
    A PCA map fitted on too few items is fitted again instead (REFIT_BELOW).
    """
    started = time.perf_counter()
    kinds = space_kinds(library, layout.space)
    rows = library.catalog.space_segments(layout.space, kinds)
    per_item = Counter(r[0] for r in rows)
    current = set(per_item)
    if layout.method == "pca" and current and (
            layout.fitted < REFIT_BELOW or len(current) > REFIT_GROWTH * layout.fitted):
        return compute_map(library, layout.space, "pca", rows=rows, progress=progress,
                           cancel=cancel)
    known = set(layout.item_ids.tolist())
    new = current - known
    regrouped = {i for i, n in zip(layout.item_ids.tolist(), layout.segments.tolist(),
                                   strict=True) if i in current and per_item[i] != n}
    recent = ({r[0] for r in rows if r[2] > layout.stamp} & known) | regrouped
    removed = np.array(sorted(known - current), np.int64)
    ids, xy, stamp = np.zeros(0, np.int64), np.zeros((0, 2), np.float32), layout.stamp
    segments = np.zeros(0, np.int32)
    if new or recent:
        ids, vectors, stamp, segments = read_space(library, layout.space, new | recent,
                                                   rows=rows, progress=progress,
                                                   cancel=cancel)
        xy = layout.place(vectors)
    if not len(ids) and not len(removed):
        return MapState(layout, seconds=time.perf_counter() - started)
    if cancel is not None:
        cancel.raise_if_cancelled()  # a superseded update must not overwrite a newer map
    placed = set(ids.tolist())
    updated = layout.merged(ids, xy, segments, removed, stamp)
    save(updated, library.path)
    return MapState(updated, added=len(placed & new), moved=len(placed & recent),
                    removed=len(removed), seconds=time.perf_counter() - started)


def open_map(library, space: str, method: str = "pca", *,
             progress: ProgressCallback = no_progress, cancel: CancelToken | None = None
             ) -> MapState | None:
    """The cached layout brought up to date, or None when none is cached (a job)."""
    layout = load(library.path, space, method, library.store.spaces.get(space))
    return None if layout is None else update_map(library, layout, progress=progress,
                                                  cancel=cancel)


def open_or_compute_map(library, space: str, method: str = "pca", *,
                        progress: ProgressCallback = no_progress,
                        cancel: CancelToken | None = None) -> MapState:
    """The cached layout brought up to date, or a fresh one when none is cached (a job)."""
    state = open_map(library, space, method, progress=progress, cancel=cancel)
    return state if state is not None else compute_map(library, space, method,
                                                       progress=progress, cancel=cancel)

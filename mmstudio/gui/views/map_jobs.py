"""The map panel's jobs (run on its task slots, never on the GUI thread): open, fit or
update a layout and sort its points for drawing, colour it, pick a lasso selection,
load a hover card, resolve a clicked item."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtGui import QColor, QImage

from mmstudio.core.errors import MediaError
from mmstudio.core.items import item_results, main_file
from mmstudio.core.thumbnails import thumbnail, thumbs_dir
from mmstudio.maps.build import (
    MapState,
    compute_map,
    map_spaces,
    open_map,
    open_or_compute_map,
    update_map,
)
from mmstudio.maps.colours import Colouring, colour_items
from mmstudio.maps.geometry import PointSet
from mmstudio.maps.layout import Layout
from mmstudio.maps.raster import argb

HOVER_SIZE = 160
FADE = 0.6  # how far points outside the emphasis fade towards the background


@dataclass(frozen=True)
class Shown:
    """A layout ready for the canvas: its points, and each layout row's point row."""

    state: MapState
    points: PointSet
    rows: np.ndarray  # (N,) layout row -> point row


@dataclass(frozen=True)
class Coloured:
    shown: Shown  # the map these colours are for
    colouring: Colouring
    colours: np.ndarray  # (N,) ARGB32, point order
    faded: np.ndarray


def _shown(state: MapState | None) -> Shown | None:
    if state is None:
        return None
    layout = state.layout
    points = PointSet(layout.item_ids, layout.xy)
    return Shown(state, points, points.rows_of(layout.item_ids))


def load_map(library, space: str, method: str, compute: bool, *, progress, cancel
             ) -> Shown | None:
    """The cached map brought up to date; computed when there is none and `compute`."""
    if compute:
        return _shown(open_or_compute_map(library, space, method, progress=progress,
                                          cancel=cancel))
    return _shown(open_map(library, space, method, progress=progress, cancel=cancel))


def recompute_map(library, space: str, method: str, *, progress, cancel) -> Shown:
    return _shown(compute_map(library, space, method, progress=progress, cancel=cancel))


def refresh_map(library, layout: Layout, *, progress, cancel) -> Shown:
    return _shown(update_map(library, layout, progress=progress, cancel=cancel))


def colour_map(library, shown: Shown, mode: str, schema: str | None, scores,
               background: QColor, *, progress, cancel) -> Coloured:
    colouring = colour_items(library, shown.state.layout.item_ids, mode, schema=schema,
                             scores=scores)
    rgb = np.empty_like(colouring.rgb)
    rgb[shown.rows] = colouring.rgb  # layout order -> point order
    background = np.array([background.red(), background.green(), background.blue()], np.float32)
    faded = np.rint(rgb * (1 - FADE) + background * FADE).astype(np.uint8)
    return Coloured(shown, colouring, argb(rgb), argb(faded))


def lasso_rows(points: PointSet, polygon: np.ndarray, *, progress, cancel
               ) -> tuple[PointSet, np.ndarray, np.ndarray]:
    """(the points searched, the item ids inside the polygon, their rows there)."""
    rows = np.flatnonzero(points.in_polygon(polygon))
    return points, points.ids[rows], rows


def place_query(layout: Layout, vector: np.ndarray, *, progress, cancel) -> tuple[float, float]:
    """Where the query's vector lands on the layout (on a UMAP map: among 10,000 anchors)."""
    x, y = layout.place(vector[None])[0]
    return float(x), float(y)


def spaces_and_schemas(library, *, progress, cancel) -> tuple[dict[str, int], list[str]]:
    return map_spaces(library), [s.name for s in library.labels.schemas()]


def hover_item(library, item_id: int, *, progress, cancel) -> tuple[int, QImage | None, str]:
    """(item, its thumbnail or None, a caption): for the hover card."""
    files = library.catalog.item_files([item_id]).get(item_id)
    if not files:
        return item_id, None, "(no longer in the library)"
    path, modality = main_file(files)
    name = Path(path).name
    try:
        made = thumbnail(path, thumbs_dir(library.path), HOVER_SIZE)
    except (MediaError, OSError) as exc:
        return item_id, None, f"{name}: {exc}"
    if made.path is None:  # text: its snippet is the picture
        return item_id, None, f"{name} — {(made.snippet or '')[:90]}"
    image = QImage(str(made.path))  # QImage is safe off the GUI thread; QPixmap is not
    return item_id, None if image.isNull() else image, name


def resolve_item(library, item_id: int, *, progress, cancel):
    found = item_results(library, [item_id])
    return found[0] if found else None

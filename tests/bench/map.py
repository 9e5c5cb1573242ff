"""The embedding map: frames per second at 1,000,000 points, picking, and projection jobs.

Frames: a MapCanvas of 1280 x 800 on the offscreen platform (Qt's raster engine, the
same software path a window without OpenGL takes) shows 1,000,000 points of a
generated layout (40 clusters of uneven size and spread, 10 colour categories).
Each frame is a synchronous `repaint()` after a pan or zoom step, so every frame
rasterises the points again: no frame is served from a cache. Scenarios: the whole map
in view, panning zoomed in 4x, zooming in and out at the cursor, a search's 1,000
results drawn over the faded rest, and a 300,000-point lasso selection likewise.
Picking: the nearest point under the cursor and a 200-vertex lasso over all points.
Projection jobs: PCA fitted on 1,000,000 384-d vectors; a library of generated
vectors mapped end to end (vectors read from Qdrant Edge, fitted, cached), then 1,000
new items placed without refitting; UMAP on 20,000 items (skipped with --quick).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from tests.bench.report import BenchResult, Table, Target

NAME = "map"
POINTS = 1_000_000
WIDTH, HEIGHT = 1280, 800
FRAMES = 60
FPS_TARGET = 30.0
LASSO_TARGET_MS = 300.0


def layout_points(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) positions in 40 clusters of uneven size and spread, and a category each."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, (40, 2))
    sizes = rng.dirichlet(np.full(40, 0.8))
    which = rng.choice(40, n, p=sizes)
    spread = rng.uniform(0.2, 1.5, 40)
    xy = centres[which] + rng.normal(size=(n, 2)) * spread[which, None]
    return xy.astype(np.float32), which % 10


def _frames(app, canvas, step, frames: int = FRAMES) -> dict[str, float]:
    times = []
    for k in range(frames):
        step(k)
        started = time.perf_counter()
        canvas.repaint()
        app.processEvents()
        times.append((time.perf_counter() - started) * 1000)
    t = np.array(times)
    return {"mean_ms": float(t.mean()), "p95_ms": float(np.percentile(t, 95)),
            "fps": float(1000 / t.mean())}


def frame_rates(n: int) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QPointF
    from PySide6.QtWidgets import QApplication

    from mmstudio.gui.widgets.map_canvas import MapCanvas
    from mmstudio.labels.schema import PALETTE
    from mmstudio.maps.colours import rgb_of
    from mmstudio.maps.geometry import PointSet
    from mmstudio.maps.raster import argb

    app = QApplication.instance() or QApplication([])
    xy, category = layout_points(n)
    ids = np.arange(n, dtype=np.int64)
    started = time.perf_counter()
    points = PointSet(ids, xy)
    build_s = time.perf_counter() - started
    palette = np.array([rgb_of(PALETTE[c % len(PALETTE)]) for c in range(10)], np.uint8)
    rgb = np.empty((n, 3), np.uint8)
    rgb[points.rows_of(ids)] = palette[category]
    faded = (rgb * 0.25 + 20).astype(np.uint8)
    canvas = MapCanvas()
    canvas.resize(WIDTH, HEIGHT)
    canvas.show()
    canvas.set_points(points)
    canvas.set_colours(argb(rgb), argb(faded))
    canvas.repaint()
    centre = QPointF(WIDTH / 2, HEIGHT / 2)

    scenarios: dict[str, dict[str, float]] = {}
    scenarios["whole map in view, panning"] = _frames(
        app, canvas, lambda k: canvas.pan(3 if k % 2 else -3, 0))
    canvas.fit()
    canvas.zoom(4.0, centre)
    scenarios["zoomed in x4, panning"] = _frames(
        app, canvas, lambda k: canvas.pan(15 if (k // 20) % 2 == 0 else -15, 6))
    canvas.fit()
    scenarios["zooming in and out at the cursor"] = _frames(
        app, canvas, lambda k: canvas.zoom(1.15 if k < FRAMES // 2 else 1 / 1.15,
                                           QPointF(WIDTH * 0.3, HEIGHT * 0.6)))
    canvas.fit()
    rng = np.random.default_rng(1)
    canvas.set_emphasis(rng.choice(n, 1000, replace=False))
    scenarios["1,000 results over the faded rest"] = _frames(
        app, canvas, lambda k: canvas.pan(3 if k % 2 else -3, 0))
    canvas.set_emphasis(np.flatnonzero(xy[points.rows_of(ids)][:, 0] < -2)[:300_000])
    scenarios["300,000 selected over the faded rest"] = _frames(
        app, canvas, lambda k: canvas.pan(3 if k % 2 else -3, 0))

    (x0, y0, x1, y1) = points.bounds()
    angles = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    radius = 0.35 * min(x1 - x0, y1 - y0) * (1 + 0.25 * np.sin(5 * angles))
    polygon = np.stack([(x0 + x1) / 2 + radius * np.cos(angles),
                        (y0 + y1) / 2 + radius * np.sin(angles)], axis=1)
    started = time.perf_counter()
    inside = points.in_polygon(polygon)
    lasso_ms = (time.perf_counter() - started) * 1000
    picks = rng.uniform([x0, y0], [x1, y1], (500, 2))
    started = time.perf_counter()
    for wx, wy in picks:
        points.nearest(float(wx), float(wy), 8 / canvas.view.scale)
    pick_ms = (time.perf_counter() - started) * 1000 / len(picks)
    canvas.close()
    return scenarios, {"pointset_build_s": build_s, "lasso_ms": lasso_ms,
                       "lasso_selected": int(inside.sum()), "pick_ms": pick_ms}


def projections(quick: bool, tmp: Path) -> dict[str, float]:
    from mmstudio.core.library import Library
    from mmstudio.maps import build
    from mmstudio.maps.layout import fit, knn_place, umap_missing
    from tests.map_factory import add_items, clusters

    found: dict[str, float] = {}
    rng = np.random.default_rng(0)
    n = 200_000 if quick else POINTS
    vectors = rng.normal(size=(n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    started = time.perf_counter()
    fit("bench", np.arange(n), vectors, "pca")
    found["pca_fit_s"] = time.perf_counter() - started
    found["pca_fit_n"] = n
    del vectors

    items = 2_000 if quick else 10_000
    with Library(tmp / "lib") as lib:
        vecs, _ = clusters(items // 5, k=5, dim=384)
        add_items(lib, vecs)
        started = time.perf_counter()
        state = build.compute_map(lib, "gen", "pca")
        found["library_map_s"] = time.perf_counter() - started
        found["library_items"] = len(state.layout)
        more, _ = clusters(200, k=5, dim=384, seed=1)
        add_items(lib, more, start=items)
        started = time.perf_counter()
        update = build.open_map(lib, "gen", "pca")
        found["incremental_1000_s"] = time.perf_counter() - started
        found["incremental_added"] = update.added

    anchors = rng.normal(size=(10_000, 384)).astype(np.float32)
    anchors /= np.linalg.norm(anchors, axis=1, keepdims=True)
    new = rng.normal(size=(10_000, 384)).astype(np.float32)
    new /= np.linalg.norm(new, axis=1, keepdims=True)
    started = time.perf_counter()
    knn_place(new, anchors.astype(np.float16), rng.normal(size=(10_000, 2)).astype(np.float32))
    found["knn_place_10k_s"] = time.perf_counter() - started
    if not quick and umap_missing() is None:
        vecs, _ = clusters(4_000, k=5, dim=384)
        started = time.perf_counter()
        fit("bench", np.arange(len(vecs)), vecs, "umap")
        found["umap_fit_20k_s"] = time.perf_counter() - started
    return found


def run(quick: bool, tmp: Path) -> BenchResult:
    started = time.perf_counter()
    scenarios, picking = frame_rates(POINTS)
    jobs = projections(quick, tmp)
    table = Table(["scenario (1,000,000 points, 1280 x 800)", "mean ms", "p95 ms", "fps"])
    for name, s in scenarios.items():
        table.add(name, f"{s['mean_ms']:.1f}", f"{s['p95_ms']:.1f}", f"{s['fps']:.0f}")
    other = Table(["measure", "value"])
    other.add("nearest point under the cursor", f"{picking['pick_ms']:.3f} ms")
    other.add(f"200-vertex lasso ({picking['lasso_selected']:,} selected)",
              f"{picking['lasso_ms']:.0f} ms")
    other.add("points sorted for drawing (off the GUI thread)",
              f"{picking['pointset_build_s']:.2f} s")
    other.add(f"PCA fit, {int(jobs['pca_fit_n']):,} x 384-d", f"{jobs['pca_fit_s']:.1f} s")
    other.add(f"library map, {int(jobs['library_items']):,} items (read, fit, cache)",
              f"{jobs['library_map_s']:.1f} s")
    other.add(f"{int(jobs['incremental_added']):,} new items placed, no refit",
              f"{jobs['incremental_1000_s']:.2f} s")
    other.add("10,000 items placed on 10,000 UMAP anchors", f"{jobs['knn_place_10k_s']:.2f} s")
    if "umap_fit_20k_s" in jobs:
        other.add("UMAP fit, 20,000 x 384-d", f"{jobs['umap_fit_20k_s']:.0f} s")
    slowest = min(s["fps"] for s in scenarios.values())
    return BenchResult(
        NAME, "embedding map: frames per second and picking at 1,000,000 points",
        {"points": POINTS, "canvas": f"{WIDTH}x{HEIGHT}", "frames": FRAMES, "quick": quick},
        table,
        [Target("slowest scenario's frames per second", slowest, ">=", FPS_TARGET),
         Target("lasso over 1,000,000 points", picking["lasso_ms"], "<=", LASSO_TARGET_MS,
                " ms")],
        ["every frame rasterises all points in view again (no cached frame); offscreen "
         "raster painting, as a window without OpenGL paints"],
        {"scenarios": scenarios, "picking": picking, "jobs": jobs},
        time.perf_counter() - started,
        {"picking and jobs": other},
    )

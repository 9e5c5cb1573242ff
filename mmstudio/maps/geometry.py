"""Geometry of the embedding map: the view transform, and map points sorted by x.

Points are kept sorted by x so that every spatial question (what is on screen, what is
under the cursor, what is inside a lasso) starts with a binary search and touches only
a contiguous slice, which keeps pan, hover and lasso interactive at a million points
without a spatial tree.

Coordinates are stored as float32 (half the memory and bandwidth of float64), but every
comparison against a world coordinate given as a Python float is exact: bounds are first
rounded to the float32 that the comparison needs (`_ceil32` / `_floor32`), and the view
transform always computes in float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

Bounds = tuple[float, float, float, float]


def _ceil32(value: float) -> np.float32:
    """The smallest float32 >= value, so `x32 >= _ceil32(v)` is exactly `x32 >= v`."""
    with np.errstate(over="ignore"):
        f = np.float32(value)
    if float(f) < value:
        f = np.nextafter(f, np.float32(np.inf))
    return f


def _floor32(value: float) -> np.float32:
    """The largest float32 <= value, so `x32 <= _floor32(v)` is exactly `x32 <= v`."""
    with np.errstate(over="ignore"):
        f = np.float32(value)
    if float(f) > value:
        f = np.nextafter(f, np.float32(-np.inf))
    return f


def _pair(a: np.ndarray, b: np.ndarray):
    # plain floats in, plain floats out: callers mix both freely
    if a.ndim == 0 and b.ndim == 0:
        return float(a), float(b)
    return a, b


@dataclass(frozen=True)
class View:
    """What part of the world a canvas of width x height pixels shows.

    World y points up; screen y points down (row 0 is the top). A point at world (x, y)
    is drawn in pixel `floor(to_screen(x, y))`; the arithmetic is float64 and its order
    is fixed, because the rasteriser relies on getting the very same pixel.
    """

    cx: float
    cy: float
    scale: float  # pixels per world unit
    width: int
    height: int

    def __post_init__(self) -> None:
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"View scale must be a positive number, not {self.scale!r}")
        if self.width < 0 or self.height < 0:
            raise ValueError(f"View size must not be negative: {self.width}x{self.height}")

    def to_screen(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (float) of world points; floats in give floats out."""
        sx = np.array(x, dtype=np.float64)
        sy = np.array(y, dtype=np.float64)
        # in place: the rasteriser calls this on a million points per frame
        sx -= self.cx
        sx *= self.scale
        sx += self.width / 2
        sy -= self.cy
        sy *= self.scale
        np.subtract(self.height / 2, sy, out=sy)
        return _pair(sx, sy)

    def to_world(self, px, py) -> tuple[np.ndarray, np.ndarray]:
        """World coordinates of pixel coordinates; the inverse of `to_screen`."""
        wx = (np.asarray(px, dtype=np.float64) - self.width / 2) / self.scale + self.cx
        wy = (self.height / 2 - np.asarray(py, dtype=np.float64)) / self.scale + self.cy
        return _pair(wx, wy)

    def world_rect(self) -> Bounds:
        """xmin, ymin, xmax, ymax of the world the canvas shows."""
        hw = self.width / 2 / self.scale
        hh = self.height / 2 / self.scale
        return self.cx - hw, self.cy - hh, self.cx + hw, self.cy + hh

    def panned(self, dx_px: float, dy_px: float) -> View:
        """The view after dragging by (dx, dy) pixels: the content follows the mouse."""
        return View(self.cx - dx_px / self.scale, self.cy + dy_px / self.scale,
                    self.scale, self.width, self.height)

    def zoomed(self, factor: float, px: float, py: float) -> View:
        """Scale multiplied by `factor`, keeping the world point under (px, py) under it.

        No clamping: the caller knows the sensible range for its data.
        """
        wx, wy = self.to_world(px, py)
        scale = self.scale * factor
        return View(wx - (px - self.width / 2) / scale, wy - (self.height / 2 - py) / scale,
                    scale, self.width, self.height)

    def resized(self, width: int, height: int) -> View:
        """Same centre and scale on a canvas of another size."""
        return View(self.cx, self.cy, self.scale, width, height)

    @classmethod
    def fit(cls, bounds: Bounds, width: int, height: int, margin: float = 0.05) -> View:
        """A view showing all of `bounds`, with `margin` (a fraction of the canvas) free
        on every side.

        Degenerate bounds still give a finite scale: a zero extent on one axis is fitted
        by the other, and a single point gets one pixel per world unit.
        """
        xmin, ymin, xmax, ymax = (float(b) for b in bounds)
        free = max(1.0 - 2.0 * margin, 0.01)
        avail_w = max(width, 1) * free
        avail_h = max(height, 1) * free
        candidates = [avail / extent
                      for avail, extent in ((avail_w, xmax - xmin), (avail_h, ymax - ymin))
                      if extent > 0 and np.isfinite(avail / extent)]
        scale = min(candidates) if candidates else 1.0
        return cls((xmin + xmax) / 2, (ymin + ymax) / 2, scale, width, height)


class PointSet:
    """Map points sorted by x, for culling, picking and lasso selection.

    `ids`, `x` and `y` are read-only arrays in x order; a "row" is an index into them.
    """

    def __init__(self, item_ids: np.ndarray, xy: np.ndarray) -> None:
        item_ids = np.asarray(item_ids, dtype=np.int64).reshape(-1)
        xy = np.asarray(xy, dtype=np.float64)
        if xy.size == 0:
            xy = xy.reshape(0, 2)
        if xy.ndim != 2 or xy.shape != (len(item_ids), 2):
            raise ValueError(f"xy must be ({len(item_ids)}, 2), not {xy.shape}")
        x = xy[:, 0].astype(np.float32)
        # stable, so equal x keep the caller's order (and overdraw order follows it)
        order = np.argsort(x, kind="stable")
        self.ids = np.ascontiguousarray(item_ids[order])
        self.x = np.ascontiguousarray(x[order])
        self.y = np.ascontiguousarray(xy[order, 1].astype(np.float32))
        for a in (self.ids, self.x, self.y):
            a.flags.writeable = False
        # kept, not recomputed: the rasteriser asks every frame whether all points fit
        self._bounds = (0.0, 0.0, 0.0, 0.0) if not len(self.ids) else (
            float(self.x[0]), float(self.y.min()), float(self.x[-1]), float(self.y.max()))

    def __len__(self) -> int:
        return len(self.ids)

    def bounds(self) -> Bounds:
        """xmin, ymin, xmax, ymax of the points (zeros when there are none)."""
        return self._bounds

    @cached_property
    def _by_id(self) -> tuple[np.ndarray, np.ndarray]:
        # built on first use: most maps never look rows up by id
        order = np.argsort(self.ids, kind="stable")
        return self.ids[order], order

    def rows_of(self, item_ids) -> np.ndarray:
        """Rows of these ids, in the order given; ids not in the set are left out."""
        wanted = np.asarray(item_ids, dtype=np.int64).reshape(-1)
        sorted_ids, order = self._by_id
        if not len(sorted_ids) or not len(wanted):
            return np.empty(0, dtype=np.int64)
        pos = np.searchsorted(sorted_ids, wanted)
        pos[pos == len(sorted_ids)] = 0
        found = sorted_ids[pos] == wanted
        return order[pos[found]].astype(np.int64, copy=False)

    def x_slice(self, x0: float, x1: float) -> slice:
        """Rows with x0 <= x <= x1."""
        start = int(np.searchsorted(self.x, _ceil32(x0), side="left"))
        stop = int(np.searchsorted(self.x, _floor32(x1), side="right"))
        return slice(start, max(start, stop))

    def visible(self, view: View, pad_px: float = 0) -> np.ndarray:
        """Rows inside the view's world rectangle grown by `pad_px` pixels (edges included)."""
        xmin, ymin, xmax, ymax = view.world_rect()
        pad = pad_px / view.scale
        sl = self.x_slice(xmin - pad, xmax + pad)
        y = self.y[sl]
        inside = (y >= _ceil32(ymin - pad)) & (y <= _floor32(ymax + pad))
        return (np.flatnonzero(inside) + sl.start).astype(np.int64, copy=False)

    def nearest(self, wx: float, wy: float, radius: float) -> int | None:
        """Row of the point nearest (wx, wy) within `radius` world units, or None."""
        if not len(self) or not radius >= 0:
            return None
        sl = self.x_slice(wx - radius, wx + radius)
        dx = self.x[sl].astype(np.float64) - wx
        dy = self.y[sl].astype(np.float64) - wy
        d2 = dx * dx + dy * dy
        if not len(d2):
            return None
        best = int(np.argmin(d2))
        if not d2[best] <= radius * radius:
            return None
        return sl.start + best

    def in_polygon(self, polygon: np.ndarray) -> np.ndarray:
        """(N,) bool: rows inside a closed polygon (M, 2) of world coordinates, even-odd rule.

        Casts a ray upward from every point: for each edge, only the points whose x is in
        the edge's half-open x-range [min, max) can cross it (half-open, so a shared
        vertex is counted once), and they form one contiguous slice of the sorted x. A
        point flips its parity when it lies below the edge. The total work is about N
        times the number of edges a vertical line crosses, not N times M.
        """
        inside = np.zeros(len(self), dtype=bool)
        poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
        if len(poly) > 1 and np.array_equal(poly[0], poly[-1]):
            poly = poly[:-1]
        if len(poly) < 3 or not len(self):
            return inside
        for (x1, y1), (x2, y2) in zip(poly, np.roll(poly, -1, axis=0), strict=True):
            if x1 == x2 or not np.isfinite((x1, x2, y1, y2)).all():
                continue  # vertical edges cross no upward ray
            lo, hi = (x1, x2) if x1 < x2 else (x2, x1)
            start = int(np.searchsorted(self.x, _ceil32(lo), side="left"))
            stop = int(np.searchsorted(self.x, _ceil32(hi), side="left"))  # x < hi
            if stop <= start:
                continue
            # in float64, so an edge is not rounded to float32 before the comparison
            edge_y = (self.x[start:stop].astype(np.float64) - x1) * ((y2 - y1) / (x2 - x1)) + y1
            inside[start:stop] ^= self.y[start:stop] < edge_y
        return inside

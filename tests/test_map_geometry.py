"""The embedding map's geometry and rasteriser, checked against brute-force versions."""

import math

import numpy as np
import pytest

from mmstudio.maps import raster
from mmstudio.maps.geometry import PointSet, View
from mmstudio.maps.raster import ALPHA_LUT, argb, auto_radius, render


def random_points(n, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    return PointSet(rng.permutation(n).astype(np.int64) * 7 + 3, rng.normal(0, spread, (n, 2)))


def brute_pixels(view, x, y):
    """The pixel each point should land in, one Python float at a time."""
    cols, rows = [], []
    for wx, wy in zip(x, y, strict=True):
        sx, sy = view.to_screen(float(wx), float(wy))
        cols.append(math.floor(sx))
        rows.append(math.floor(sy))
    return np.array(cols), np.array(rows)


def brute_render(points, colours, view, rows, radius):
    """Point by point, disc pixel by disc pixel: later points overwrite, alpha by count."""
    h, w = view.height, view.width
    img = np.zeros((h, w), np.uint32)
    count = np.zeros((h, w), np.int64)
    d = np.arange(-radius, radius + 1)
    dy, dx = (a.ravel() for a in np.meshgrid(d, d, indexing="ij"))
    disc = dx * dx + dy * dy <= radius * radius + radius
    dx, dy = dx[disc], dy[disc]
    px, py = brute_pixels(view, points.x[rows], points.y[rows])
    for row, cx, cy in zip(rows, px, py, strict=True):
        xs, ys = cx + dx, cy + dy
        ok = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        img[ys[ok], xs[ok]] = colours[row] & 0xFFFFFF
        count[ys[ok], xs[ok]] += 1
    alpha = ALPHA_LUT[np.minimum(count, 63)].astype(np.uint32) << 24
    return np.where(count > 0, img | alpha, 0).astype(np.uint32)


def pnpoly(px, py, poly):
    """Classic even-odd ray casting with a horizontal ray, vectorised over the points."""
    inside = np.zeros(len(px), bool)
    n = len(poly)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(n):
            (xi, yi), (xj, yj) = poly[i], poly[i - 1]
            crosses = ((yi > py) != (yj > py)) & (px < (xj - xi) * (py - yi) / (yj - yi) + xi)
            inside ^= crosses
    return inside


# ---------------------------------------------------------------- View


def test_to_world_inverts_to_screen_for_arrays_and_floats():
    view = View(cx=1.5, cy=-2.0, scale=37.0, width=640, height=480)
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 5, 100), rng.normal(0, 5, 100)
    wx, wy = view.to_world(*view.to_screen(x, y))
    np.testing.assert_allclose(wx, x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(wy, y, rtol=0, atol=1e-12)
    sx, sy = view.to_screen(1.5, -2.0)
    assert isinstance(sx, float) and (sx, sy) == (320.0, 240.0)
    # world y up, screen y down
    assert view.to_screen(1.5, -1.0)[1] < 240.0


def test_world_rect_is_what_the_canvas_corners_show():
    view = View(cx=3.0, cy=4.0, scale=10.0, width=200, height=100)
    assert view.world_rect() == pytest.approx((-7.0, -1.0, 13.0, 9.0))
    assert view.to_world(0, 100) == pytest.approx((-7.0, -1.0))
    assert view.to_world(200, 0) == pytest.approx((13.0, 9.0))


def test_zoomed_keeps_the_point_under_the_cursor():
    view = View(cx=0.3, cy=0.7, scale=50.0, width=800, height=600)
    for factor, px, py in [(2.0, 100, 500), (0.25, 799, 0), (1.7, 400, 300)]:
        under = view.to_world(px, py)
        zoomed = view.zoomed(factor, px, py)
        assert zoomed.scale == pytest.approx(view.scale * factor)
        assert zoomed.to_world(px, py) == pytest.approx(under, abs=1e-12)
        assert (zoomed.width, zoomed.height) == (800, 600)


def test_panned_moves_content_with_the_drag():
    view = View(cx=0.0, cy=0.0, scale=20.0, width=300, height=200)
    x, y = np.array([0.0, 1.0, -3.5]), np.array([0.0, 2.0, 0.25])
    sx, sy = view.to_screen(x, y)
    moved = view.panned(10, -4)
    mx, my = moved.to_screen(x, y)
    np.testing.assert_allclose(mx, sx + 10)
    np.testing.assert_allclose(my, sy - 4)
    assert moved.scale == view.scale


def test_resized_keeps_centre_and_scale():
    view = View(cx=1.0, cy=2.0, scale=3.0, width=10, height=20).resized(30, 40)
    assert view == View(cx=1.0, cy=2.0, scale=3.0, width=30, height=40)


def test_fit_shows_all_bounds_with_the_margin():
    bounds = (-3.0, 10.0, 5.0, 12.0)
    for width, height in [(800, 600), (300, 900)]:
        view = View.fit(bounds, width, height, margin=0.1)
        sx, sy = view.to_screen(np.array([bounds[0], bounds[2]]), np.array([bounds[1], bounds[3]]))
        assert sx.min() >= 0.1 * width - 1e-9 and sx.max() <= 0.9 * width + 1e-9
        assert sy.min() >= 0.1 * height - 1e-9 and sy.max() <= 0.9 * height + 1e-9
        # tight on one axis: not just any view that happens to contain the bounds
        assert (sx.max() - sx.min() == pytest.approx(0.8 * width)
                or sy.max() - sy.min() == pytest.approx(0.8 * height))


def test_fit_degenerate_bounds_give_a_finite_scale():
    one_point = View.fit((2.0, 3.0, 2.0, 3.0), 400, 300)
    assert math.isfinite(one_point.scale) and one_point.scale > 0
    assert one_point.to_screen(2.0, 3.0) == (200.0, 150.0)
    flat = View.fit((0.0, 5.0, 10.0, 5.0), 400, 300, margin=0.0)
    assert flat.scale == pytest.approx(40.0)
    upright = View.fit((1.0, 0.0, 1.0, 10.0), 400, 300, margin=0.0)
    assert upright.scale == pytest.approx(30.0)
    assert View.fit((0.0, 0.0, 1.0, 1.0), 0, 0).scale > 0


def test_view_rejects_a_scale_that_is_not_positive():
    for scale in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            View(0.0, 0.0, scale, 10, 10)


# ---------------------------------------------------------------- PointSet


def test_points_are_sorted_by_x_and_keep_their_ids():
    rng = np.random.default_rng(2)
    ids = rng.permutation(1000).astype(np.int64) + 100
    xy = rng.normal(size=(1000, 2))
    points = PointSet(ids, xy)
    assert len(points) == 1000
    assert points.x.dtype == np.float32 and points.y.dtype == np.float32
    assert points.ids.dtype == np.int64
    assert np.all(np.diff(points.x) >= 0)
    by_id = dict(zip(ids.tolist(), xy.astype(np.float32).tolist(), strict=True))
    for row in (0, 17, 999):
        assert [points.x[row], points.y[row]] == by_id[int(points.ids[row])]
    assert points.bounds() == pytest.approx(
        (xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()), abs=1e-6)
    with pytest.raises(ValueError):
        PointSet(ids[:10], xy[:9])


def test_rows_of_keeps_order_and_drops_unknown_ids():
    points = random_points(500, seed=3)
    wanted = np.array([points.ids[40], -1, points.ids[3], 10**12, points.ids[499], points.ids[3]])
    rows = points.rows_of(wanted)
    assert rows.dtype == np.int64
    assert rows.tolist() == [40, 3, 499, 3]
    assert points.rows_of([]).tolist() == []
    assert points.rows_of([-5]).tolist() == []


def test_x_slice_is_exact_against_bounds_float32_cannot_hold():
    x = np.float32(0.1)
    points = PointSet(np.arange(3), [[float(x), 0.0], [0.5, 0.0], [0.9, 0.0]])
    just_above = float(x) + 1e-12  # rounds back to x in float32
    assert points.x_slice(just_above, 1.0) == slice(1, 3)
    assert points.x_slice(float(x), 0.5) == slice(0, 2)
    assert points.x_slice(0.0, float(x) - 1e-12) == slice(0, 0)
    assert points.x_slice(2.0, 1.0) == slice(3, 3)


def test_visible_equals_a_brute_force_mask():
    points = random_points(5000, seed=4)
    x, y = points.x.astype(np.float64), points.y.astype(np.float64)
    views = [View(0.0, 0.0, 100.0, 320, 200), View(-1.2, 0.8, 400.0, 100, 300),
             View(5.0, 5.0, 50.0, 64, 64), View.fit(points.bounds(), 640, 480)]
    for view in views:
        for pad_px in (0, 7.5):
            xmin, ymin, xmax, ymax = view.world_rect()
            pad = pad_px / view.scale
            expected = np.flatnonzero((x >= xmin - pad) & (x <= xmax + pad)
                                      & (y >= ymin - pad) & (y <= ymax + pad))
            got = points.visible(view, pad_px=pad_px)
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, expected)
    assert len(points.visible(views[2])) == 0
    assert len(points.visible(views[3])) == 5000


def test_nearest_equals_brute_force_within_the_radius():
    points = random_points(5000, seed=5)
    x, y = points.x.astype(np.float64), points.y.astype(np.float64)
    rng = np.random.default_rng(6)
    found = 0
    for wx, wy in rng.normal(0, 1.2, (60, 2)):
        for radius in (0.01, 0.05, 0.3):
            d2 = (x - wx) ** 2 + (y - wy) ** 2
            best = int(np.argmin(d2))
            expected = best if d2[best] <= radius * radius else None
            assert points.nearest(wx, wy, radius) == expected
            found += expected is not None
    assert found > 20  # the loop tried both outcomes
    assert points.nearest(100.0, 100.0, 1.0) is None


def test_in_polygon_matches_ray_casting_on_many_shapes():
    rng = np.random.default_rng(7)
    points = PointSet(np.arange(5000), rng.uniform(-1.5, 1.5, (5000, 2)))
    px, py = points.x.astype(np.float64), points.y.astype(np.float64)
    angle = np.linspace(0, 2 * np.pi, 10, endpoint=False)
    star = np.c_[np.where(np.arange(10) % 2, 0.4, 1.2) * np.cos(angle),
                 np.where(np.arange(10) % 2, 0.4, 1.2) * np.sin(angle)]
    c_shape = np.array([[-1, -1], [1, -1], [1, -0.6], [-0.6, -0.6], [-0.6, 0.6], [1, 0.6],
                        [1, 1], [-1, 1]], dtype=float)
    random_angles = np.sort(rng.uniform(0, 2 * np.pi, 40))
    random_radii = rng.uniform(0.2, 1.4, 40)
    blob = np.c_[random_radii * np.cos(random_angles), random_radii * np.sin(random_angles)]
    convex = np.c_[np.cos(np.linspace(0, 2 * np.pi, 7, endpoint=False)),
                   np.sin(np.linspace(0, 2 * np.pi, 7, endpoint=False))] + 0.3
    pentagram = 1.3 * np.c_[np.cos(angle[::2][[0, 2, 4, 1, 3]]), np.sin(angle[::2][[0, 2, 4, 1, 3]])]
    lasso = np.c_[np.linspace(-1.4, 1.4, 300), 0.6 * np.sin(np.linspace(0, 9, 300))]
    lasso = np.vstack([lasso, lasso[::-1] + [0, -0.5]])  # a wavy band, 600 vertices
    for polygon in (star, c_shape, blob, convex, pentagram, lasso, c_shape[::-1]):
        expected = pnpoly(px, py, polygon)
        assert 0 < expected.sum() < len(points)
        np.testing.assert_array_equal(points.in_polygon(polygon), expected)
        closed = np.vstack([polygon, polygon[:1]])
        np.testing.assert_array_equal(points.in_polygon(closed), expected)
    # even-odd: the pentagram's centre pentagon is a hole
    assert not points.in_polygon(pentagram)[np.flatnonzero((px**2 + py**2) < 0.1)].any()


def test_in_polygon_known_cases():
    grid = np.stack(np.meshgrid(np.arange(-0.5, 6), np.arange(-0.5, 6)), -1).reshape(-1, 2)
    points = PointSet(np.arange(len(grid)), grid)
    square = np.array([[0, 0], [4, 0], [4, 4], [0, 4]], dtype=float)
    inside = points.in_polygon(square)
    assert inside.sum() == 16
    assert np.all((points.x[inside] > 0) & (points.x[inside] < 4))
    assert np.all((points.y[inside] > 0) & (points.y[inside] < 4))
    assert not points.in_polygon(square[:2]).any()
    assert not points.in_polygon(np.vstack([square[:2], square[:1]])).any()  # closed 2-gon
    assert points.in_polygon(np.empty((0, 2))).shape == (len(points),)


def test_in_polygon_counts_a_vertex_in_line_with_a_point_once():
    diamond = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=float)
    probes = [[0, 0], [0, 2], [0, -2], [-1, 0.5], [-1, -0.5], [1, 0.5], [1, -0.5], [0.5, 0]]
    points = PointSet(np.arange(len(probes)), probes)
    inside = dict(zip(map(tuple, np.c_[points.x, points.y].tolist()),
                      points.in_polygon(diamond).tolist(), strict=True))
    assert inside == {(0, 0): True, (0, 2): False, (0, -2): False, (-1, 0.5): False,
                      (-1, -0.5): False, (1, 0.5): False, (1, -0.5): False, (0.5, 0): True}


def test_an_empty_point_set_works_everywhere():
    points = PointSet(np.empty(0, np.int64), np.empty((0, 2)))
    view = View(0.0, 0.0, 1.0, 40, 30)
    assert len(points) == 0 and points.bounds() == (0.0, 0.0, 0.0, 0.0)
    assert points.rows_of([1, 2]).tolist() == []
    assert points.x_slice(-1, 1) == slice(0, 0)
    assert points.visible(view).tolist() == []
    assert points.nearest(0.0, 0.0, 10.0) is None
    assert points.in_polygon(np.array([[0, 0], [1, 0], [0, 1]])).shape == (0,)
    img = render(points, np.empty(0, np.uint32), view)
    assert img.shape == (30, 40) and img.dtype == np.uint32 and not img.any()
    assert not render(points, np.empty(0, np.uint32), view, radius=2).any()


# ---------------------------------------------------------------- raster


def test_argb_packs_opaque_colours():
    rgb = np.array([[255, 0, 0], [0, 128, 0], [1, 2, 3]], dtype=np.uint8)
    assert argb(rgb).tolist() == [0xFFFF0000, 0xFF008000, 0xFF010203]
    assert argb(rgb).dtype == np.uint32


def test_auto_radius_steps():
    assert [auto_radius(n) for n in (0, 2000, 2001, 20_000, 20_001, 200_000, 200_001)] == \
        [3, 3, 2, 2, 1, 1, 0]


def test_alpha_rises_with_count_from_a_visible_lone_point():
    assert ALPHA_LUT[0] == 0 and 160 <= ALPHA_LUT[1] <= 180
    assert np.all(np.diff(ALPHA_LUT[1:33].astype(int)) >= 0)
    assert ALPHA_LUT[2] > ALPHA_LUT[1] and np.all(ALPHA_LUT[32:] == 255)


def test_a_single_point_lands_in_its_pixel_with_its_colour():
    points = PointSet([9], [[0.37, -0.81]])
    view = View(cx=0.1, cy=0.2, scale=33.3, width=90, height=70)
    img = render(points, np.array([0x00123456], np.uint32), view, radius=0)
    assert img.shape == (70, 90) and img.dtype == np.uint32
    sx, sy = view.to_screen(float(points.x[0]), float(points.y[0]))
    assert np.flatnonzero(img).tolist() == [math.floor(sy) * 90 + math.floor(sx)]
    # the colour's own alpha is replaced by the density alpha
    assert img[math.floor(sy), math.floor(sx)] == (int(ALPHA_LUT[1]) << 24) | 0x123456


def test_two_points_in_a_pixel_show_the_later_colour_more_opaque():
    points = PointSet([1, 2, 3], [[0.2, 5.5], [0.1, 5.5], [5.5, 5.5]])  # row order: x
    colours = np.array([0xFF0000AA, 0xFF0000BB, 0xFF0000CC], np.uint32)
    view = View(cx=5.0, cy=5.0, scale=1.0, width=10, height=10)
    img = render(points, colours, view, radius=0)
    assert img[4, 0] == (int(ALPHA_LUT[2]) << 24) | 0xBB  # x=0.2 is row 1, drawn last
    assert img[4, 5] == (int(ALPHA_LUT[1]) << 24) | 0xCC
    assert np.count_nonzero(img) == 2
    # given rows are drawn in the order given
    img = render(points, colours, view, rows=np.array([1, 0]), radius=0)
    assert img[4, 0] == (int(ALPHA_LUT[2]) << 24) | 0xAA
    assert img[4, 5] == 0


def test_a_lone_point_gets_the_same_alpha_in_sparse_and_dense_images():
    xy = [[0.5, 0.5]] * 200 + [[15.5, 15.5]]
    points = PointSet(np.arange(201), xy)
    colours = np.full(201, 0xFF336699, np.uint32)
    for size in (20, 400):  # 201 points: dense at 20x20, sparse at 400x400
        view = View(cx=size / 2, cy=size / 2, scale=1.0, width=size, height=size)
        img = render(points, colours, view, radius=0)
        assert img[size - 16, 15] >> 24 == ALPHA_LUT[1]
        assert img[size - 1, 0] >> 24 == 255
        assert np.count_nonzero(img) == 2


@pytest.mark.parametrize("radius", [0, 1, 2, 3])
@pytest.mark.parametrize("counting", ["dense", "sparse"])
def test_render_equals_brute_force(radius, counting, monkeypatch):
    # both ways of counting points per pixel, whatever the image size would pick
    monkeypatch.setattr(raster, "_DENSE_SPLATS_PER_PIXEL", 0.0 if counting == "dense" else 1e9)
    n = 1500
    points = random_points(n, seed=10 + radius)
    rng = np.random.default_rng(radius)
    colours = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    # the view cuts through the cloud, so points straddle every border
    view = View(cx=0.4, cy=-0.3, scale=30.0, width=61, height=47)
    expected = brute_render(points, colours, view, np.arange(n), radius)
    np.testing.assert_array_equal(render(points, colours, view, radius=radius), expected)
    rows = rng.choice(n, n // 3, replace=False)
    expected = brute_render(points, colours, view, rows, radius)
    np.testing.assert_array_equal(render(points, colours, view, rows=rows, radius=radius),
                                  expected)


def test_render_of_a_fitted_view_equals_brute_force():
    # every point well inside: the rasteriser skips its culling pass
    points = random_points(800, seed=13)
    colours = np.random.default_rng(13).integers(0, 2**32, 800, dtype=np.uint64).astype(np.uint32)
    view = View.fit(points.bounds(), 50, 40)
    expected = brute_render(points, colours, view, np.arange(800), auto_radius(800))
    np.testing.assert_array_equal(render(points, colours, view), expected)


def test_pixels_are_floored_not_truncated_at_the_edges():
    # scale 1 and the centre at (5, 5): world (x, y) is pixel (x, 10 - y), exactly
    view = View(cx=5.0, cy=5.0, scale=1.0, width=10, height=10)
    xy = [[-0.25, 5.5], [5.5, 10.25], [10.0, 5.5], [5.5, 0.0], [0.0, 10.0], [9.75, 0.25]]
    points = PointSet(np.arange(6), xy)
    img = render(points, np.full(6, 0xFFFFFFFF, np.uint32), view, radius=0)
    # only the last two are inside: (0, 10) is pixel (0, 0), (9.75, 0.25) is pixel (9, 9)
    assert np.argwhere(img).tolist() == [[0, 0], [9, 9]]


def test_a_disc_has_the_expected_pixels_and_is_clipped_at_the_border():
    view = View(cx=0.0, cy=0.0, scale=1.0, width=40, height=30)
    middle = PointSet([1], [[0.5, 0.5]])
    img = render(middle, np.array([0xFFFFFFFF], np.uint32), view, radius=2)
    assert np.count_nonzero(img) == 21  # dx*dx + dy*dy <= 2*2 + 2
    ys, xs = np.nonzero(img)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (18, 22, 12, 16)
    # a disc on the left edge: half of it is drawn, nothing wraps to the right edge
    edge = PointSet([1], [[-19.5, 0.5]])  # pixel (0, 14)
    img = render(edge, np.array([0xFFFFFFFF], np.uint32), view, radius=2)
    assert np.count_nonzero(img) == 13
    assert not img[:, -3:].any()
    ys, xs = np.nonzero(img)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (0, 2, 12, 16)
    corner = PointSet([1], [[19.5, -14.5]])  # pixel (39, 29), the bottom-right corner
    img = render(corner, np.array([0xFFFFFFFF], np.uint32), view, radius=3)
    assert np.count_nonzero(img) == 13
    assert not img[:3, :].any() and not img[:, :3].any()
    # a centre just outside still draws the part of its disc that is inside
    outside = PointSet([1], [[-21.5, 0.5]])  # pixel (-2, 14)
    img = render(outside, np.array([0xFFFFFFFF], np.uint32), view, radius=2)
    assert np.argwhere(img).tolist() == [[13, 0], [14, 0], [15, 0]]


def test_rows_restrict_and_out_overlays():
    points = random_points(300, seed=11, spread=0.5)
    view = View.fit(points.bounds(), 80, 60)
    base = render(points, np.full(300, 0xFF808080, np.uint32), view, radius=0)
    emphasised = np.array([5, 77, 150, 299])
    layer = render(points, np.full(300, 0xFFFF0000, np.uint32), view, rows=emphasised, radius=1)
    out = base.copy()
    result = render(points, np.full(300, 0xFFFF0000, np.uint32), view, rows=emphasised,
                    radius=1, out=out)
    assert result is out
    drawn = layer != 0
    assert 9 <= np.count_nonzero(drawn) <= 4 * 9
    np.testing.assert_array_equal(out[drawn], layer[drawn])
    np.testing.assert_array_equal(out[~drawn], base[~drawn])
    assert np.all(out[drawn] & 0xFFFFFF == 0xFF0000)
    with pytest.raises(ValueError):
        render(points, np.zeros(300, np.uint32), view, out=np.zeros((60, 81), np.uint32))
    with pytest.raises(ValueError):
        render(points, np.zeros(299, np.uint32), view)


def test_automatic_radius_follows_the_visible_count():
    points = PointSet([1], [[0.5, 0.5]])
    view = View(cx=0.0, cy=0.0, scale=1.0, width=20, height=20)
    assert np.count_nonzero(render(points, np.array([0xFFFFFFFF], np.uint32), view)) == 37
    rng = np.random.default_rng(12)
    many = PointSet(np.arange(3000), rng.uniform(-100, 100, (3000, 2)))
    colours = np.full(3000, 0xFFFFFFFF, np.uint32)
    view = View(cx=0.0, cy=0.0, scale=1.0, width=400, height=400)
    np.testing.assert_array_equal(render(many, colours, view),
                                  render(many, colours, view, radius=2))

"""The map panel, offscreen: a projection job on generated vectors, the lasso, clicks and
hover, colour modes, search links, and new items joining a map that stays put."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from mmstudio.core.library import Library
from mmstudio.core.samples import PATTERNS, draw
from mmstudio.core.search import SearchOutcome, SearchQuery
from mmstudio.core.segments import MODALITY_HEX
from mmstudio.gui.views import map as map_module
from mmstudio.gui.views.map import MapPanel
from mmstudio.gui.views.map_jobs import recompute_map
from mmstudio.labels import Schema, Suggestion
from mmstudio.maps.build import cache_path
from mmstudio.maps.colours import rgb_of
from mmstudio.maps.raster import argb
from tests.gui.conftest import Gate
from tests.map_factory import SPACE, add_items, clusters

WAIT = 30_000


def colour(hex_colour: str) -> int:
    return int(argb(np.array([rgb_of(hex_colour)], np.uint8))[0])


@pytest.fixture
def generated(tmp_path):
    """A library of three clusters of pictures (real files, for the hover card) and a
    handful of texts; the cluster of each item."""
    folder = tmp_path / "media"
    folder.mkdir()
    vectors, truth = clusters(40, seed=2)
    patterns = list(PATTERNS)
    for n in range(len(vectors)):
        draw(patterns[n % len(patterns)], 48, seed=n).save(folder / f"item-{n:06d}.png")
    with Library(tmp_path / "lib") as lib:
        ids = add_items(lib, vectors, folder=folder)
        texts = add_items(lib, vectors[:4], start=500, modality="text", folder=folder)
        yield lib, np.array(ids), truth, texts, vectors


@pytest.fixture
def panel(qtbot, generated):
    lib = generated[0]
    p = MapPanel()
    qtbot.addWidget(p)
    p.resize(900, 650)
    p.show()
    p.set_library(lib)
    p.activate()
    qtbot.waitUntil(lambda: p.coloured is not None, timeout=WAIT)
    yield p
    p.shutdown()


def held_computes(monkeypatch, gate: Gate, *, let_go_on_cancel: bool = False) -> Gate:
    """The panel's next Compute jobs wait at `gate` before fitting (a job takes the
    function when it is started, so each may be given a gate of its own); held past
    their cancel too, unless `let_go_on_cancel`."""
    def held(*args, progress, cancel):
        gate.wait(cancel if let_go_on_cancel else None)
        return recompute_map(*args, progress=progress, cancel=cancel)

    monkeypatch.setattr(map_module, "recompute_map", held)
    return gate


def screen_of(panel: MapPanel, item_id: int) -> QPoint:
    points = panel.shown.points
    row = int(points.rows_of([item_id])[0])
    px, py = panel.canvas.view.to_screen(points.x[row], points.y[row])
    return QPoint(int(px), int(py))


def test_projection_job_draws_every_item_coloured_by_modality(panel, generated):
    lib, ids, _, texts, _ = generated
    layout = panel.shown.state.layout
    assert sorted(layout.item_ids.tolist()) == sorted([*ids.tolist(), *texts])
    assert cache_path(lib.path, SPACE, "pca").exists()
    assert "124 items of gen" in panel.status.text()
    legend = {c.name: c.count for c in panel.coloured.colouring.categories}
    assert legend == {"image": 120, "text": 4}
    canvas = panel.canvas
    image = canvas.grab().toImage()
    # the drawn frame holds the points where the view puts them, in their colour
    for item, modality in ((int(ids[7]), "image"), (texts[1], "text")):
        row = int(panel.shown.points.rows_of([item])[0])
        assert canvas._colours[row] == colour(MODALITY_HEX[modality])
    pos = screen_of(panel, int(ids[60]))
    drawn = image.pixelColor(pos)
    assert drawn.blue() > drawn.red() + 60  # the picture's blue over the dark background
    assert image.pixelColor(canvas.width() - 2, canvas.height() - 2).name() == "#1b1d21"


def test_lasso_selects_exactly_the_points_inside(qtbot, panel, generated):
    _, ids, truth, texts, _ = generated
    canvas = panel.canvas
    cluster = [int(i) for i in ids[truth == 1]]
    corners = np.array([[screen_of(panel, i).x(), screen_of(panel, i).y()] for i in cluster])
    (x0, y0), (x1, y1) = corners.min(0) - 4, corners.max(0) + 4
    others = [int(i) for i in [*ids[truth != 1], *texts]]
    inside = [i for i in others if x0 <= screen_of(panel, i).x() <= x1
              and y0 <= screen_of(panel, i).y() <= y1]
    assert not inside, "the generated clusters overlap on screen: the test needs apart ones"
    path = [QPoint(int(x0), int(y0)), QPoint(int(x1), int(y0)), QPoint(int(x1), int(y1)),
            QPoint(int(x0), int(y1)), QPoint(int(x0), int(y0) + 2)]
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                     path[0])
    for a, b in zip(path, path[1:], strict=False):
        for t in np.linspace(0, 1, 8)[1:]:
            QTest.mouseMove(canvas, QPoint(int(a.x() + (b.x() - a.x()) * t),
                                           int(a.y() + (b.y() - a.y()) * t)))
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                       path[-1])
    qtbot.waitUntil(lambda: len(panel.selection) > 0, timeout=WAIT)
    assert sorted(panel.selection.tolist()) == sorted(cluster)
    assert panel.selection_bar.isVisible() and "40 selected" in panel.selection_label.text()
    # the selection is drawn on top; the rest fades
    assert sorted(canvas._emphasis.tolist()) == sorted(panel.shown.points.rows_of(cluster))
    with qtbot.waitSignal(panel.show_items, timeout=WAIT) as shown:
        panel.show_button.click()
    assert sorted(shown.args[0]) == sorted(cluster)
    with qtbot.waitSignal(panel.start_labeling, timeout=WAIT) as started:
        panel.start_button.click()
    assert sorted(started.args[0]) == sorted(cluster)
    with qtbot.waitSignal(panel.label_menu, timeout=WAIT) as menu:
        panel.label_button.click()
    assert sorted(menu.args[0]) == sorted(cluster)
    QTest.keyClick(canvas, Qt.Key.Key_Escape)
    assert not len(panel.selection) and canvas._emphasis is None


def test_click_chooses_an_item_and_hover_shows_its_thumbnail(qtbot, panel, generated):
    _, ids, _, _, _ = generated
    item = int(ids[33])
    pos = screen_of(panel, item)
    # the nearest point to the cursor wins: find a spot where this item is nearest
    assert panel.canvas.points.ids[panel.canvas.row_at(pos.toPointF())] in ids
    target = int(panel.canvas.points.ids[panel.canvas.row_at(pos.toPointF())])
    with qtbot.waitSignal(panel.result_chosen, timeout=WAIT) as chosen:
        QTest.mouseClick(panel.canvas, Qt.MouseButton.LeftButton, pos=pos)
    assert chosen.args[0].item_id == target and chosen.args[0].path.endswith(".png")
    assert panel.canvas._current == int(panel.shown.points.rows_of([target])[0])
    QTest.mouseMove(panel.canvas, pos + QPoint(1, 0))
    qtbot.waitUntil(lambda: panel.canvas._hover_card is not None, timeout=WAIT)
    image, text = panel.canvas._hover_card
    assert image is not None and not image.isNull() and text == f"item-{ids.tolist().index(target):06d}.png"


def test_colour_modes_follow_labels_predictions_and_scores(qtbot, panel, generated):
    lib, ids, _, _, _ = generated
    schema = Schema.of("kind", ["round", "square"])
    lib.labels.save_schema(schema)
    lib.labels.set_labels("kind", {int(ids[0]): ["square"]})
    panel.set_library(lib)  # schemas are read with the spaces
    qtbot.waitUntil(lambda: panel.coloured is not None, timeout=WAIT)

    def rows(*items):
        return panel.shown.points.rows_of(list(items))

    def choose(mode):
        panel.coloured = None
        panel.colour_box.setCurrentIndex(panel.colour_box.findData(mode))
        panel.colour_box.activated.emit(panel.colour_box.currentIndex())
        qtbot.waitUntil(lambda: panel.coloured is not None, timeout=WAIT)

    choose("label")
    assert panel.schema_box.isVisible() and panel.schema_box.currentText() == "kind"
    colours = panel.canvas._colours
    assert colours[rows(int(ids[0]))[0]] == colour(schema.colour("square"))
    assert colours[rows(int(ids[1]))[0]] == colour("#5f6368")
    # a label written elsewhere (the labeling panel) recolours the map
    lib.labels.set_labels("kind", {int(ids[1]): ["round"]})
    panel.coloured = None
    panel.labels_changed()
    qtbot.waitUntil(lambda: panel.coloured is not None, timeout=WAIT)
    assert panel.canvas._colours[rows(int(ids[1]))[0]] == colour(schema.colour("round"))

    lib.labels.set_suggestions("kind", {int(ids[2]): Suggestion("round", 0.9, "knn")})
    choose("predicted")
    assert panel.canvas._colours[rows(int(ids[2]))[0]] == colour(schema.colour("round"))
    choose("confidence")
    assert panel.coloured.colouring.values is not None
    assert panel.canvas._colours[rows(int(ids[2]))[0]] != colour("#5f6368")

    choose("score")
    assert panel.coloured.colouring.missing == len(panel.shown.points)  # no search yet
    panel.coloured = None
    panel.set_outcome(SearchOutcome(SearchQuery(text="x"),
                                    results_for(lib, ids[:3], [0.9, 0.5, 0.1]), {}, 0.0))
    qtbot.waitUntil(lambda: panel.coloured is not None, timeout=WAIT)
    c = panel.canvas._colours
    assert c[rows(int(ids[0]))[0]] == colour("#fde725")  # the best score: viridis' top
    assert c[rows(int(ids[2]))[0]] == colour("#440154")
    assert panel.coloured.colouring.missing == len(panel.shown.points) - 3


def results_for(lib, item_ids, scores):
    from mmstudio.core.items import item_results

    return item_results(lib, [int(i) for i in item_ids], dict(zip(
        [int(i) for i in item_ids], scores, strict=True)))


def test_search_results_are_highlighted_and_the_query_is_a_point(qtbot, panel, generated):
    lib, ids, _, _, vectors = generated
    results = results_for(lib, ids[[3, 50, 90]], [1.0, 0.8, 0.6])
    query = vectors[50]
    panel.set_outcome(SearchOutcome(SearchQuery(text="x"), results, {SPACE: query}, 0.0))
    assert sorted(panel.canvas._emphasis.tolist()) == sorted(
        panel.shown.points.rows_of(ids[[3, 50, 90]]).tolist())
    # the query is item 50's own vector: the star lands on item 50's point (placed by a job)
    layout = panel.shown.state.layout
    expected = layout.xy[int(np.flatnonzero(layout.item_ids == ids[50])[0])]
    qtbot.waitUntil(lambda: panel.canvas._query is not None, timeout=WAIT)
    assert panel.canvas._query == pytest.approx((float(expected[0]), float(expected[1])),
                                                abs=1e-5)
    # a query searched in other spaces only has no place on this map
    panel.set_outcome(SearchOutcome(SearchQuery(text="x"), results, {"other": query}, 0.0))
    assert panel.canvas._query is None
    # a search that found every item: its best hundred stand out, not all of them
    everything = results_for(lib, ids, np.linspace(1, 0.1, len(ids)))
    panel.set_outcome(SearchOutcome(SearchQuery(text="x"), everything, {}, 0.0))
    assert sorted(panel.canvas._emphasis.tolist()) == sorted(
        panel.shown.points.rows_of(ids[:100]).tolist())
    panel.set_outcome(None)
    assert panel.canvas._emphasis is None and panel.canvas._query is None


def test_new_items_join_a_map_that_stays_put(qtbot, panel, generated):
    lib, ids, truth, _, vectors = generated
    before = panel.shown.state.layout
    view = panel.canvas.view
    added = add_items(lib, vectors[:5] * 0.98 + vectors[5:10] * 0.02, start=900)
    panel.library_updated()

    def placed() -> bool:  # the old map stays drawn, in colour, until the new one is
        assert panel.canvas._colours is not None and panel.canvas.points is not None
        return len(panel.shown.state.layout) == len(before) + 5

    qtbot.waitUntil(placed, timeout=WAIT)
    qtbot.waitUntil(lambda: panel.coloured is not None and
                    len(panel.coloured.colours) == len(before) + 5, timeout=WAIT)
    layout = panel.shown.state.layout
    old = np.isin(layout.item_ids, before.item_ids)
    np.testing.assert_array_equal(layout.xy[old], before.xy)
    assert set(added) <= set(layout.item_ids.tolist())
    assert panel.canvas.view == view  # the person's pan and zoom stay
    assert "placed since" in panel.status.text()


def test_umap_without_its_package_is_explained(qtbot, generated, monkeypatch):
    monkeypatch.setattr("mmstudio.gui.views.map.umap_missing",
                        lambda: "UMAP needs the optional umap-learn package")
    p = MapPanel()
    qtbot.addWidget(p)
    p.set_library(generated[0])
    item = p.method_box.model().item(1)
    assert p.method_box.itemData(1) == "umap"
    assert not item.isEnabled() and "umap-learn" in item.toolTip()
    p.shutdown()


def test_map_tab_in_the_window_previews_shows_and_labels(qtbot, labels_window):
    from tests.gui.test_main_window import names_in_grid

    w, ids, _ = labels_window
    w.tabs.setCurrentIndex(1)
    m = w.map
    qtbot.waitUntil(lambda: m.coloured is not None, timeout=WAIT)
    assert m.space == "fake-visual"  # the space with the most items comes first
    item = ids["stripes"]
    w.session.select(None)
    QTest.mouseClick(m.canvas, Qt.MouseButton.LeftButton,
                     pos=screen_of(m, item))
    qtbot.waitUntil(lambda: w.session.selected is not None, timeout=WAIT)
    clicked = w.session.selected.item_id
    assert w.preview.result is not None and w.preview.result.item_id == clicked
    chosen = [ids["stripes"], ids["checker"], ids["cats"]]
    m.select_items(chosen)
    m.show_button.click()
    qtbot.waitUntil(lambda: len(names_in_grid(w)) == 3, timeout=WAIT)
    assert w.tabs.currentIndex() == 0
    assert sorted(r.item_id for r in w.results.results) == sorted(chosen)
    w.tabs.setCurrentIndex(1)
    m.label_button.click()  # the grid's label menu, for the lasso's items
    words = next(a for a in w.grid_menu.actions()[0].menu().actions()
                 if a.text().startswith("words"))
    words.trigger()
    library = w.session.library
    qtbot.waitUntil(lambda: library.labels.labels("kind") == {
        i: {"words"} for i in chosen}, timeout=WAIT)
    m.start_button.click()
    qtbot.waitUntil(lambda: w.labeling.session is not None, timeout=WAIT)
    assert set(w.labeling.session.queue) == set(chosen)


def test_items_added_while_a_map_job_runs_are_placed_after_it(qtbot, panel, generated,
                                                              monkeypatch):
    lib, _, _, _, vectors = generated
    gate = held_computes(monkeypatch, Gate())
    panel.compute()
    qtbot.waitUntil(gate.entered.is_set, timeout=WAIT)  # running, held: the update must wait
    job = panel.map_slot.current
    add_items(lib, vectors[:3] * 0.9 + vectors[3:6] * 0.1, start=700)
    panel.library_updated()
    assert panel._refresh_pending and panel.map_slot.current is job  # not started beside it
    gate.open()
    qtbot.waitUntil(lambda: not panel.map_slot.busy and panel._incoming is None
                    and len(panel.shown.points) == 127, timeout=WAIT)
    assert not panel._refresh_pending


@pytest.mark.parametrize("replacement_first", [False, True],
                         ids=["stops-while-the-new-runs", "stops-after-the-new-is-shown"])
def test_a_replaced_job_does_not_say_cancelled(qtbot, two_pool_threads, panel, monkeypatch,
                                               replacement_first):
    seen = []  # what the panel shows when the replaced job's cancellation has arrived
    panel.map_slot.cancelled.connect(lambda: seen.append(
        (panel.progress.isVisible(), panel.status.text())))
    first = held_computes(monkeypatch, Gate())
    panel.compute()
    qtbot.waitUntil(first.entered.is_set, timeout=WAIT)  # running, held at the gate
    second = held_computes(monkeypatch, Gate())
    panel.compute()  # the first is superseded: its cancellation is not the person's
    qtbot.waitUntil(second.entered.is_set, timeout=WAIT)
    assert panel.map_slot.busy and first is not second
    computing = "Computing the PCA map of gen…"
    if replacement_first:
        second.open()
        qtbot.waitUntil(lambda: "124 items of gen" in panel.status.text()
                        and panel._incoming is None and panel.coloured is not None,
                        timeout=WAIT)
        first.open()
        expected = (False, panel.status.text())
    else:
        first.open()
        expected = (True, computing)
    qtbot.waitUntil(lambda: bool(seen), timeout=WAIT)  # the replaced job stopped on its cancel
    assert seen == [expected]
    second.open()
    qtbot.waitUntil(lambda: not panel.map_slot.busy and panel._incoming is None
                    and panel.coloured is not None, timeout=WAIT)
    assert "124 items of gen" in panel.status.text() and not panel.progress.isVisible()
    assert not panel.status.text().startswith("Cancelled")


def test_closing_the_library_during_a_job_starts_no_update_on_it(qtbot, panel, monkeypatch):
    lib = panel.library
    started = []
    panel.map_slot.job_started.connect(started.append)
    gate = held_computes(monkeypatch, Gate(), let_go_on_cancel=True)
    panel.compute()
    qtbot.waitUntil(gate.entered.is_set, timeout=WAIT)
    panel.library_updated()  # waits for the running job...
    assert panel._refresh_pending and len(started) == 1
    panel.set_library(None)  # ...which the close cancels: its idle must not start the update
    assert len(started) == 1 and not panel.map_slot.busy and panel.library is None
    assert lib is not None and not panel._refresh_pending


def test_cancel_says_so_and_keeps_the_map_shown(qtbot, panel, monkeypatch):
    shown = panel.shown
    gate = held_computes(monkeypatch, Gate())
    panel.compute()
    qtbot.waitUntil(gate.entered.is_set, timeout=WAIT)  # running, held at the gate
    assert panel.progress.isVisible() and panel.cancel_button.isVisible()
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    gate.open()
    qtbot.waitUntil(lambda: not panel.map_slot.busy, timeout=WAIT)
    assert panel.status.text() == "Cancelled. The map shown is the last one."
    assert not panel.progress.isVisible() and not panel.cancel_button.isVisible()
    assert panel.shown is shown


def test_emphasised_points_stand_out_within_a_pixel_budget():
    from mmstudio.gui.widgets.map_canvas import emphasis_radius
    from mmstudio.maps.raster import _disc_offsets

    assert emphasis_radius(1) >= 2 and emphasis_radius(1_000) >= 2  # bigger than the map's
    for shown in (1, 1_000, 20_000, 50_000, 50_001, 110_000, 110_001, 300_000, 1_000_000):
        radius = emphasis_radius(shown)
        pixels = shown * len(_disc_offsets(radius, 800)) if radius else shown
        assert pixels <= max(1_100_000, shown), (shown, radius, pixels)

"""The labeling and fusion docks inside the main window: pools, bulk labels from the
grid, and items shown in the grid without a search."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel

from tests.gui.test_main_window import names_in_grid, wait_idle

WAIT = 30_000


def test_items_shown_without_a_query_then_bulk_labeled_from_the_grid(qtbot, labels_window):
    w, ids, files = labels_window
    wanted = [ids["stripes"], ids["checker"], ids["circles"]]
    w.session.show_items(wanted, "three pictures")
    qtbot.waitUntil(lambda: len(names_in_grid(w)) == 3, timeout=WAIT)
    assert names_in_grid(w) == ["stripes.png", "checker.png", "circles.png"]
    assert w.query_bar.chip.isVisible() and "three pictures" in w.query_bar.chip.toolTip()
    # select two cards: they are the labeling panel's "selection" pool
    model, sel = w.grid.model(), w.grid.selectionModel()
    sel.clearSelection()
    for row in (0, 2):
        sel.select(model.index(row, 0), QItemSelectionModel.SelectionFlag.Select)
    assert w.selected_items() == [ids["stripes"], ids["circles"]]
    w._grid_menu(w.grid.visualRect(model.index(0, 0)).center())
    label_menu = w.grid_menu.actions()[0].menu()
    picture = next(a for a in label_menu.actions() if a.text().startswith("picture"))
    picture.trigger()
    library = w.session.library
    qtbot.waitUntil(lambda: library.labels.labels("kind") == {
        ids["stripes"]: {"picture"}, ids["circles"]: {"picture"}}, timeout=WAIT)
    qtbot.waitUntil(lambda: w.labeling.undo_stack.count() == 1, timeout=WAIT)
    w.labeling.undo_stack.undo()
    qtbot.waitUntil(lambda: library.labels.labels("kind") == {}, timeout=WAIT)
    wait_idle(qtbot, w)


def test_start_labeling_the_selection(qtbot, labels_window):
    w, ids, files = labels_window
    w.session.show_items([ids["tone"], ids["noise"], ids["cats"]], "some")
    qtbot.waitUntil(lambda: len(names_in_grid(w)) == 3, timeout=WAIT)
    w.grid.selectAll()
    w._grid_menu(w.grid.rect().center())
    start = next(a for a in w.grid_menu.actions() if a.text().startswith("Start labeling"))
    start.trigger()
    qtbot.waitUntil(lambda: w.labeling.session is not None, timeout=WAIT)
    qtbot.waitUntil(lambda: w.labeling.current_item is not None, timeout=WAIT)
    assert set(w.labeling.session.queue) == {ids["tone"], ids["noise"], ids["cats"]}
    assert w.labeling_dock.isVisible()


def test_labeling_keys_stay_in_the_labeling_panel(labels_window):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QShortcut

    w, _, _ = labels_window
    keys = [s for s in w.labeling.findChildren(QShortcut)]
    assert keys and all(s.context() == Qt.ShortcutContext.WidgetWithChildrenShortcut
                        for s in keys)

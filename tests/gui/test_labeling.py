"""The labeling panel: keys label and move on, commits show only once on disk, undo/redo
through the journal, bulk as one step, multi-label toggles, re-plans keep the item."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from mmstudio.core.ingest import index
from mmstudio.core.library import Library
from mmstudio.gui.models.queue import LabelsRole, PendingRole
from mmstudio.gui.views.labeling import REPLAN_EVERY, LabelingPanel
from mmstudio.labels.schema import Schema
from mmstudio.labels.store import LabelStore, Suggestion
from tests.fakes import FakeEncoder
from tests.gui.conftest import Gate
from tests.media_factory import colour_pictures

WAIT = 30_000  # generous: a loaded 2-core machine, not a timing check
_names = itertools.count()


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """18 pictures of three colours, indexed with the fake encoder."""
    root = tmp_path_factory.mktemp("labeling")
    media = root / "media"
    colour_pictures(media, 6, 24)
    with Library(root / "lib") as lib:
        index(lib, [media], encoders=[FakeEncoder()])
        ids = {Path(p).stem: i for i, files in lib.catalog.item_files().items() for p, _ in files}
        yield lib, ids


@pytest.fixture
def panel(qtbot):
    panel = LabelingPanel()
    panel.zero_shot = False  # no text tower in a fake library: keep the plan offline and fast
    qtbot.addWidget(panel)
    panel.resize(560, 760)
    panel.show()
    qtbot.waitExposed(panel)
    panel.activateWindow()
    yield panel
    panel.shutdown()
    assert not panel.writer.busy and panel.writer.pool.activeThreadCount() == 0
    assert not panel.plan_slot.busy and not panel.items_slot.busy


def fresh(labels=("red", "green", "blue"), multi=False) -> Schema:
    """A schema of its own per test: the module's library is shared."""
    return Schema.of(f"colour{next(_names)}", list(labels), multi)


def begin(qtbot, panel, lib, schema, order="given", pool="library"):
    lib.labels.save_schema(schema)
    panel.set_library(lib)
    qtbot.waitUntil(lambda: schema.name in panel.schemas, timeout=WAIT)
    panel.schema_box.setCurrentText(schema.name)
    assert panel.schema == schema
    panel.start(pool, order)
    qtbot.waitUntil(lambda: panel.current_item is not None, timeout=WAIT)
    panel.queue_view.setFocus()
    qtbot.waitUntil(lambda: panel.queue_view.hasFocus(), timeout=WAIT)
    return panel.session


def key(qtbot, panel, k, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(panel.queue_view, k, modifier)


def row_data(panel, item, role):
    return panel.model.index(panel.model.row_of(item)).data(role)


def committed(panel):
    """No write in flight, and every change on the undo stack."""
    return not panel.writer.busy and not panel.model.pending


def test_empty_states_say_what_to_do(qtbot, panel, tmp_path):
    assert "Open a library" in panel.note.text() and not panel._top.isEnabled()
    with Library(tmp_path / "empty") as lib:
        panel.set_library(lib)
        qtbot.waitUntil(lambda: "Create a label schema" in panel.note.text(), timeout=WAIT)
        assert panel.note_button.text() == "New…" and panel._top.isEnabled()
        panel.start("library")  # no schema yet: nothing starts
        assert panel.session is None and not panel.plan_slot.busy
        lib.labels.save_schema(Schema.of("animals", ["cat", "dog"]))
        panel.set_library(lib)
        qtbot.waitUntil(lambda: panel.schema is not None, timeout=WAIT)
        panel.set_pools([], [])
        panel.start("results")
        assert "no search results" in panel.note.text() and not panel.plan_slot.busy
        panel.start("library")  # a library without items
        qtbot.waitUntil(lambda: "pool is empty" in panel.note.text(), timeout=WAIT)
        panel.set_library(None)


def test_the_dialog_checks_inline_and_saves_the_schema(qtbot, panel, library):
    lib, _ = library
    panel.set_library(lib)
    qtbot.waitUntil(lambda: not panel.writer.busy, timeout=WAIT)
    dialog = panel.new_schema()
    dialog.name.setText("bad,name")
    dialog.set_labels(["round", "square"])
    dialog.submit()
    assert dialog.error.isVisibleTo(dialog) and "not allowed" in dialog.error.text()
    name = f"shapes{next(_names)}"
    dialog.name.setText(name)
    dialog.set_labels(["round", "square", "round"])
    dialog.submit()
    assert "twice" in dialog.error.text()
    dialog.set_labels(["round", "square"])
    dialog.set_colour("square", "#112233")
    dialog.multi.setChecked(True)
    dialog.submit()
    qtbot.waitUntil(lambda: panel.schema is not None and panel.schema.name == name, timeout=WAIT)
    saved = lib.labels.schema(name)
    assert saved.multi and saved.colour("square") == "#112233" and saved.by_key("1").name == "round"
    assert not dialog.isVisible() and panel.dialog is None
    assert [b.text() for b in panel.label_buttons.values()] == ["1  round", "2  square"]


def test_a_key_labels_and_moves_on_and_the_row_says_saving_until_committed(
        qtbot, panel, library, monkeypatch):
    lib, _ = library
    schema = fresh()
    begin(qtbot, panel, lib, schema)
    gate = Gate()
    write = LabelStore._apply

    def gated(self, *args, **kwargs):  # a slow disk: the write waits for the test
        gate.wait()
        return write(self, *args, **kwargs)

    monkeypatch.setattr(LabelStore, "_apply", gated)
    first = panel.current_item
    key(qtbot, panel, Qt.Key.Key_1)
    second = panel.current_item
    assert second != first and panel.preview.result.item_id == second  # moved on at once
    assert row_data(panel, first, PendingRole) is True
    assert row_data(panel, first, LabelsRole) == frozenset()  # not shown before it is on disk
    assert lib.labels.labels(schema.name) == {} and panel.undo_stack.count() == 0
    key(qtbot, panel, Qt.Key.Key_Right)  # the window answers while the disk is slow
    assert panel.current_item not in (first, second)
    key(qtbot, panel, Qt.Key.Key_Left)
    assert panel.current_item == second
    gate.open()
    qtbot.waitUntil(lambda: committed(panel), timeout=WAIT)
    assert lib.labels.labels(schema.name) == {first: {"red"}}
    assert row_data(panel, first, LabelsRole) == {"red"} and not row_data(panel, first, PendingRole)
    assert panel.undo_stack.count() == 1
    assert panel.progress_text.text().startswith("1 / 18 labeled")
    qtbot.waitUntil(lambda: panel.preview.result is not None, timeout=WAIT)
    assert panel.preview.result.item_id == second


def test_a_failed_write_is_said_and_its_row_clears(qtbot, panel, library):
    lib, _ = library
    schema = fresh()
    begin(qtbot, panel, lib, schema)
    first = panel.current_item
    lib.labels.delete_schema(schema.name)  # behind the panel's back
    with qtbot.waitSignal(panel.message, timeout=WAIT,
                          check_params_cb=lambda m: m.startswith("Label not saved")) as said:
        key(qtbot, panel, Qt.Key.Key_1)
    assert "no label schema" in said.args[0]
    qtbot.waitUntil(lambda: committed(panel), timeout=WAIT)
    assert not row_data(panel, first, PendingRole) and row_data(panel, first, LabelsRole) == set()
    assert panel.undo_stack.count() == 0 and lib.labels.labels(schema.name) == {}


def test_enter_accepts_the_suggestion(qtbot, panel, library):
    lib, ids = library
    schema = fresh()
    lib.labels.save_schema(schema)
    lib.labels.set_suggestions(schema.name, {i: Suggestion("green", 0.87, "knn")
                                             for i in ids.values()})
    begin(qtbot, panel, lib, schema)
    assert panel.suggestion.text() == "Suggested: green · 87 % · k-NN vote — Enter to accept"
    first = panel.current_item
    key(qtbot, panel, Qt.Key.Key_Return)
    assert panel.current_item != first
    qtbot.waitUntil(lambda: committed(panel), timeout=WAIT)
    assert lib.labels.labels(schema.name) == {first: {"green"}}


def test_undo_and_redo_go_through_the_journal(qtbot, panel, library):
    lib, _ = library
    schema = fresh()
    begin(qtbot, panel, lib, schema)
    first = panel.current_item
    key(qtbot, panel, Qt.Key.Key_1)
    second = panel.current_item
    key(qtbot, panel, Qt.Key.Key_2)
    key(qtbot, panel, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # waits for the write
    qtbot.waitUntil(lambda: committed(panel) and panel.undo_stack.index() == 1, timeout=WAIT)
    assert lib.labels.labels(schema.name) == {first: {"red"}}
    assert panel.current_item == second  # back to the item whose label was taken back
    assert row_data(panel, second, LabelsRole) == frozenset()
    assert not panel.label_buttons["green"].isChecked()
    key(qtbot, panel, Qt.Key.Key_Z,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: committed(panel) and panel.undo_stack.index() == 2, timeout=WAIT)
    assert lib.labels.labels(schema.name) == {first: {"red"}, second: {"green"}}
    key(qtbot, panel, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    key(qtbot, panel, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: committed(panel) and panel.undo_stack.index() == 0, timeout=WAIT)
    assert lib.labels.labels(schema.name) == {} and panel.current_item == first
    key(qtbot, panel, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: committed(panel) and panel.undo_stack.index() == 1, timeout=WAIT)
    assert lib.labels.labels(schema.name) == {first: {"red"}}
    assert row_data(panel, first, LabelsRole) == {"red"} and panel.label_buttons["red"].isChecked()


def test_bulk_is_one_undo_step_with_or_without_a_session(qtbot, panel, library):
    lib, ids = library
    schema = fresh()
    lib.labels.save_schema(schema)
    panel.set_library(lib)
    qtbot.waitUntil(lambda: schema.name in panel.schemas, timeout=WAIT)
    panel.schema_box.setCurrentText(schema.name)
    blues = [ids[f"blue{k}"] for k in range(6)]
    panel.bulk(blues[:2], "blue")  # from the results grid, before any session
    qtbot.waitUntil(lambda: committed(panel) and panel.undo_stack.count() == 1, timeout=WAIT)
    assert set(lib.labels.labels(schema.name)) == set(blues[:2])
    panel.undo()
    qtbot.waitUntil(lambda: committed(panel) and not lib.labels.labels(schema.name),
                    timeout=WAIT)
    begin(qtbot, panel, lib, schema)
    panel.bulk(blues, "blue")
    qtbot.waitUntil(lambda: committed(panel) and panel.undo_stack.count() == 1, timeout=WAIT)
    assert lib.labels.labels(schema.name) == {i: {"blue"} for i in blues}
    assert all(row_data(panel, i, LabelsRole) == {"blue"} for i in blues)
    assert panel.progress_text.text().startswith("6 / 18 labeled")
    panel.undo()
    qtbot.waitUntil(lambda: committed(panel) and not lib.labels.labels(schema.name),
                    timeout=WAIT)
    assert panel.progress_text.text().startswith("0 / 18 labeled")
    with qtbot.waitSignal(panel.message, timeout=WAIT) as said:
        panel.bulk(blues, "purple")  # not in the schema: said, not raised
    assert "purple" in said.args[0] and not panel.writer.busy
    assert panel.undo_stack.count() == 1 and panel.undo_stack.index() == 0


def test_multi_label_keys_toggle_and_stay(qtbot, panel, library):
    lib, _ = library
    schema = fresh(("indoor", "night", "people"), multi=True)
    begin(qtbot, panel, lib, schema)
    item = panel.current_item
    key(qtbot, panel, Qt.Key.Key_1)
    key(qtbot, panel, Qt.Key.Key_2)
    assert panel.current_item == item  # several labels per item: stay
    qtbot.waitUntil(lambda: committed(panel), timeout=WAIT)
    assert lib.labels.labels(schema.name) == {item: {"indoor", "night"}}
    assert [b.isChecked() for b in panel.label_buttons.values()] == [True, True, False]
    key(qtbot, panel, Qt.Key.Key_1)
    qtbot.waitUntil(lambda: committed(panel), timeout=WAIT)
    assert lib.labels.labels(schema.name) == {item: {"night"}}
    qtbot.mouseClick(panel.label_buttons["people"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: committed(panel), timeout=WAIT)
    assert lib.labels.labels(schema.name) == {item: {"night", "people"}}
    key(qtbot, panel, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: committed(panel), timeout=WAIT)
    assert lib.labels.labels(schema.name) == {}
    assert not any(b.isChecked() for b in panel.label_buttons.values())
    assert panel.undo_stack.count() == 5


def test_clicking_a_row_goes_to_its_item(qtbot, panel, library):
    lib, _ = library
    begin(qtbot, panel, lib, fresh())
    view = panel.queue_view
    index = panel.model.index(5)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualRect(index).center())
    target = panel.model.items[5]
    assert panel.current_item == target
    qtbot.waitUntil(lambda: panel.preview.result is not None
                    and panel.preview.result.item_id == target, timeout=WAIT)


def test_active_queue_is_replanned_and_the_current_item_stays(qtbot, panel, library):
    lib, _ = library
    schema = fresh()
    begin(qtbot, panel, lib, schema, order="active")
    before = list(panel.model.items)
    for _ in range(REPLAN_EVERY):
        key(qtbot, panel, Qt.Key.Key_1)
    current = panel.current_item
    assert current == before[REPLAN_EVERY]
    qtbot.waitUntil(lambda: panel.plans == 1, timeout=WAIT)
    assert panel.current_item == current and panel.model.items[:REPLAN_EVERY] == before[:REPLAN_EVERY]
    assert sorted(panel.model.items) == sorted(before)
    suggested = lib.labels.suggestions(schema.name)
    assert len(suggested) == 18 and {s.source for s in suggested.values()} == {"knn"}
    assert panel.model.suggestions[current].source == "knn"
    assert "k-NN vote" in panel.suggestion.text()
    qtbot.waitUntil(lambda: panel._rate > 0, timeout=WAIT)  # the pace, read every second
    assert "10 / 18 labeled" in panel.progress_text.text()


def test_the_end_of_the_queue_offers_to_start_again(qtbot, panel, library):
    lib, _ = library
    begin(qtbot, panel, lib, fresh())
    panel.go(len(panel.model.items))
    assert panel.current_item is None and "Queue done" in panel.done_note.text()
    assert panel.view_stack.currentIndex() == 1
    key(qtbot, panel, Qt.Key.Key_1)  # nothing to label: nothing happens
    assert panel.undo_stack.count() == 0
    key(qtbot, panel, Qt.Key.Key_Left)
    assert panel.current_item == panel.model.items[-1]


def test_closing_the_library_stops_everything_and_keeps_the_writes(qtbot, panel, library):
    lib, _ = library
    schema = fresh()
    begin(qtbot, panel, lib, schema)
    first = panel.current_item
    key(qtbot, panel, Qt.Key.Key_1)
    panel.start("library", "active")  # a plan on its way too
    panel.set_library(None)
    assert lib.labels.labels(schema.name) == {first: {"red"}}  # the write was not dropped
    assert panel.session is None and panel.model.rowCount() == 0
    assert panel.undo_stack.count() == 0 and not panel.writer.busy
    assert not panel.plan_slot.busy and panel.preview.result is None
    assert "Open a library" in panel.note.text() and not panel._top.isEnabled()

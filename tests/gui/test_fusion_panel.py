"""The fusion panel: Train fills the comparison table and the plots from the report,
a confusion cell lists exactly its items, Cancel saves nothing, an older version
loads, and closing the library leaves no job running."""

from __future__ import annotations

import dataclasses
import importlib
import shutil

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QFont
from PySide6.QtTest import QTest

from mmstudio.core.ingest import index
from mmstudio.core.library import Library
from mmstudio.fusion import Hyper, report, versions
from mmstudio.gui.views.fusion import FusionPanel
from mmstudio.labels import Schema
from tests.fakes import FakeEncoder
from tests.gui.conftest import Gate

WAIT = 60_000  # generous: a loaded 2-core machine, not a timing check
QUICK = Hyper(epochs=12, batch_size=0, lr=1e-2)  # tiny data, full batch: a run takes ~1 s
SLOW = Hyper(epochs=100_000, batch_size=0)  # runs until cancelled (checked every epoch)
TRAIN = importlib.import_module("mmstudio.fusion.train")  # the module (`train` is also a function)
COLOURS = {"red": (170, 90, 90), "green": (90, 150, 90), "blue": (90, 90, 170)}
INPUTS = ("image:fake-visual", "audio:fake-sound")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """21 picture + sound pairs of three noisy colours (pitch follows the colour only
    in part, so both inputs carry something) and one picture alone; no schema yet."""
    root = tmp_path_factory.mktemp("fusion-panel")
    media = root / "media"
    media.mkdir()
    rng = np.random.default_rng(1)
    t = np.arange(4000) / 16000
    names = list(COLOURS)
    for i in range(21):
        name = names[i % 3]
        tint = np.array(COLOURS[name]) + rng.normal(0, 40, 3)  # some pictures look off-colour
        pixels = np.clip(tint + rng.normal(0, 30, (16, 16, 3)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(media / f"{name}{i:02d}.png")
        pitch = (300, 1500, 5000)[i % 3 if i % 4 else (i + 1) % 3]
        sf.write(media / f"{name}{i:02d}.wav", (0.5 * np.sin(2 * np.pi * pitch * t)
                 + 0.05 * rng.standard_normal(len(t))).astype(np.float32), 16000)
    Image.new("RGB", (16, 16), (200, 40, 40)).save(media / "lonely.png")
    with Library(root / "lib") as lib:
        index(lib, [media], encoders=[FakeEncoder()])
    return root / "lib"


@pytest.fixture
def lib(built, tmp_path):
    shutil.copytree(built, tmp_path / "lib")
    with Library(tmp_path / "lib") as library:
        yield library


def label_colours(library, schema: str = "colour") -> dict[str, int]:
    ids = {p.rsplit("/", 1)[-1].split(".")[0]: item
           for item, files in library.catalog.item_files().items() for p, _ in files}
    library.labels.save_schema(Schema.of(schema, list(COLOURS)))
    library.labels.set_labels(schema, {i: {n.rstrip("0123456789")} for n, i in ids.items()
                                       if n != "lonely"})
    return ids


@pytest.fixture
def panel(qtbot):
    panel = FusionPanel()
    panel.hyper = QUICK
    qtbot.addWidget(panel)
    panel.resize(1100, 820)
    panel.show()
    qtbot.waitExposed(panel)
    yield panel
    panel.shutdown()
    assert not panel.train_slot.busy and not panel.read_slot.busy


def hold_first_fit(monkeypatch, *, until_cancelled: bool = True) -> Gate:
    """The test's first model fit waits at a gate: its training job is provably running
    there. It goes on when the test opens the gate, or (until_cancelled) when the job is
    cancelled: the real fit then stops at its first epoch. Later fits run freely."""
    gate, fit = Gate(), TRAIN.fit

    def held(*args, cancel=None, **kwargs):
        if not gate.entered.is_set():
            gate.wait(cancel if until_cancelled else None)
        return fit(*args, cancel=cancel, **kwargs)

    monkeypatch.setattr(TRAIN, "fit", held)
    return gate


def opened(qtbot, panel, library, schema: str | None = "colour"):
    panel.set_library(library)
    qtbot.waitUntil(lambda: not panel.read_slot.busy and panel.schema == schema, timeout=WAIT)


def trained(qtbot, panel, methods: str = "All methods", folds: int = 3):
    before = panel.report.version if panel.report is not None else 0
    panel.method_box.setCurrentText(methods)
    panel.folds.setValue(folds)
    with qtbot.waitSignal(panel.message, timeout=WAIT) as said:
        qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: panel.report is not None and panel.report.version == before + 1,
                        timeout=WAIT)
    qtbot.waitUntil(lambda: not panel.train_slot.busy, timeout=WAIT)
    return panel.report, said.args[0]


def pick_method(panel, method: str):
    panel.table.selectRow(panel.methods_model.row_of(method))
    assert panel.method == method
    return panel.report.methods[method]


def test_train_fills_the_table_and_the_plots(qtbot, panel, lib):
    label_colours(lib)
    opened(qtbot, panel, lib)
    assert panel.hint.text().startswith("Train to compare methods")
    assert panel.stack.currentWidget() is panel.hint
    r, said = trained(qtbot, panel)
    assert r == report(lib, "colour") and versions(lib, "colour") == [1]
    assert said == (f"fusion v1: {r.best} {r.methods[r.best].accuracy:.2f} accuracy; "
                    "suggestions written")
    assert r.inputs == INPUTS and r.classes == tuple(COLOURS) and r.n_items == 21
    assert lib.labels.suggestions("colour")  # the job wrote them
    model = panel.methods_model
    rows = [model.index(k, 0).data(Qt.ItemDataRole.UserRole) for k in range(model.rowCount())]
    assert rows == ["early", "late", "attention", *(f"probe:{n}" for n in INPUTS)]
    assert model.columnCount() == 3 + len(INPUTS)
    best = max(r.fusion, key=lambda m: (r.methods[m].macro_f1, r.methods[m].accuracy))
    for k, method in enumerate(rows):
        font = model.index(k, 0).data(Qt.ItemDataRole.FontRole)
        assert (isinstance(font, QFont) and font.bold()) == (method == best)
        assert (model.index(k, 0).data(Qt.ItemDataRole.ForegroundRole) is not None) == (
            method.startswith("probe:"))
        m = r.methods[method]
        assert model.index(k, 1).data() == f"{m.accuracy:.3f}"
        assert model.index(k, 3).data().startswith(f"{m.ablation[INPUTS[0]].accuracy:.3f}")
    assert panel.method == best and panel.stack.currentWidget() is panel.content

    for method in rows:  # the heatmap follows the selected row
        m = pick_method(panel, method)
        counts = np.array(m.confusion)
        assert np.array_equal(panel.heatmap.counts, counts)
        shown = panel.heatmap.image.image
        assert np.allclose(shown, counts / counts.sum(1, keepdims=True))
        assert [panel.classes_model.index(k, 2).data() for k in range(3)] == [
            f"{m.per_class[c].recall:.2f}" for c in r.classes]

    attention = pick_method(panel, "attention")
    bars = panel.bars
    for name, bar in zip(INPUTS, bars.bars, strict=True):
        want = [attention.attention[c][name] for c in r.classes]
        assert bars.series[name] == pytest.approx(want)
        assert list(bar.opts["height"]) == pytest.approx(want)
    assert "not proof" in panel.caption.text()
    late = pick_method(panel, "late")
    assert [bars.series[n][0] for n in INPUTS] == pytest.approx(
        [late.late_weights[n] for n in INPUTS])
    assert "weight" in panel.bars_title.text()
    probe = pick_method(panel, f"probe:{INPUTS[0]}")
    assert [bars.series[n][0] for n in INPUTS] == pytest.approx(
        [probe.accuracy - probe.ablation[n].accuracy for n in INPUTS])
    assert "dropped" in panel.caption.text()


def test_a_clicked_cell_lists_exactly_its_items(qtbot, panel, lib):
    label_colours(lib)
    opened(qtbot, panel, lib)
    r, _ = trained(qtbot, panel)
    m = pick_method(panel, "early")
    heatmap = panel.heatmap
    n = len(r.classes)
    for row in range(n):  # scene -> cell, at each cell's centre and just inside its corners
        for col in range(n):
            for dx, dy in ((0.5, 0.5), (0.05, 0.05), (0.95, 0.95), (0.05, 0.95)):
                pos = heatmap.image.mapToScene(QPointF(col + dx, row + dy))
                assert heatmap.cell_at(pos) == (row, col)
    corner = heatmap.image.mapToScene(QPointF(n + 0.05, n + 0.05))
    assert heatmap.cell_at(corner) is None and heatmap.click_scene(corner) is None
    assert heatmap.cell_at(heatmap.image.mapToScene(QPointF(-0.05, 0.5))) is None

    filled = [(a, b) for a in range(n) for b in range(n) if m.confusion[a][b]]
    for row, col in filled:  # through the handler, every cell with items
        true, predicted = r.classes[row], r.classes[col]
        with qtbot.waitSignal(panel.show_items, timeout=WAIT) as shown:
            heatmap.click_scene(heatmap.cell_scene_pos(row, col))
        cell = m.cell(true, predicted)
        assert sorted(shown.args[0]) == sorted(p.item_id for p in cell)
        assert shown.args[0] == [p.item_id for p in sorted(cell, key=lambda p: -p.confidence)]
        assert shown.args[1] == f"true {true} → predicted {predicted} · early"

    row, col = filled[-1]  # and a real click on the screen
    view = heatmap.plot
    point = view.mapFromScene(heatmap.cell_scene_pos(row, col))
    with qtbot.waitSignal(panel.show_items, timeout=WAIT) as shown:
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.NoModifier, point)
    assert sorted(shown.args[0]) == sorted(
        p.item_id for p in m.cell(r.classes[row], r.classes[col]))
    # an empty cell lists nothing: a status line says so. Whether training left a cell
    # empty is the model's business, so the report gets one: true 0 -> predicted 1
    true, predicted = r.classes[0], r.classes[1]
    emptied = dataclasses.replace(
        m, predictions=tuple(p for p in m.predictions if (p.true, p.predicted) != (true, predicted)),
        confusion=tuple(tuple(0 if (a, b) == (0, 1) else c for b, c in enumerate(counts))
                        for a, counts in enumerate(m.confusion)))
    panel._show_report(dataclasses.replace(r, methods={**r.methods, "early": emptied}))
    pick_method(panel, "early")
    with qtbot.assertNotEmitted(panel.show_items), \
            qtbot.waitSignal(panel.message, timeout=WAIT) as said:
        heatmap.click_scene(heatmap.cell_scene_pos(0, 1))
    assert said.args[0] == f"no item of {true} was predicted {predicted} by early"


def test_version_combo_loads_an_older_report(qtbot, panel, lib):
    label_colours(lib)
    opened(qtbot, panel, lib)
    first, _ = trained(qtbot, panel)
    second, _ = trained(qtbot, panel, "Late fusion", folds=2)
    assert second.version == 2 and set(second.fusion) == {"late"}
    box = panel.version_box
    assert [box.itemData(k) for k in range(box.count())] == [2, 1]
    assert box.currentData() == 2 and panel.methods_model.rowCount() == 3
    k = box.findData(1)
    box.setCurrentIndex(k)
    box.activated.emit(k)
    qtbot.waitUntil(lambda: panel.report.version == 1, timeout=WAIT)
    assert panel.report == first and panel.methods_model.rowCount() == 5
    panel.refresh()  # after a label change: the same version stays shown
    qtbot.waitUntil(lambda: not panel.read_slot.busy, timeout=WAIT)
    assert panel.report.version == 1 and box.currentData() == 1


def test_cancel_mid_train_saves_nothing(qtbot, panel, lib, monkeypatch):
    label_colours(lib)
    opened(qtbot, panel, lib)
    held_fit = hold_first_fit(monkeypatch)
    panel.hyper = SLOW
    panel.train()
    qtbot.waitUntil(held_fit.entered.is_set, timeout=WAIT)  # under way: held at its first fit
    assert panel.train_slot.busy and panel._train_row.isVisible()
    with qtbot.waitSignal(panel.message, timeout=WAIT) as said:
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.train_slot.busy, timeout=WAIT)
    assert "cancelled" in said.args[0]
    assert versions(lib, "colour") == [] and lib.labels.suggestions("colour") == {}
    assert panel.report is None and not panel._train_row.isVisible()
    assert panel.hint.text().startswith("Train to compare methods")


def test_a_new_train_cancels_the_stale_one(qtbot, panel, lib, monkeypatch):
    label_colours(lib)
    opened(qtbot, panel, lib)
    held_fit = hold_first_fit(monkeypatch)
    panel.hyper = SLOW
    panel.train()
    qtbot.waitUntil(held_fit.entered.is_set, timeout=WAIT)  # running, held at its first fit
    stale = panel.train_slot.current
    panel.hyper = QUICK
    r, said = trained(qtbot, panel)
    assert stale.cancel.cancelled and r.version == 1 and versions(lib, "colour") == [1]
    assert said.startswith("fusion v1:")  # the stale one's cancel is not the person's


def test_a_stale_train_that_stops_after_the_new_one_is_not_said_cancelled(
        qtbot, two_pool_threads, panel, lib, monkeypatch):
    label_colours(lib)
    opened(qtbot, panel, lib)
    gate = hold_first_fit(monkeypatch, until_cancelled=False)  # stuck in a step past a check
    panel.hyper = SLOW
    panel.train()
    qtbot.waitUntil(gate.entered.is_set, timeout=WAIT)
    stale = panel.train_slot.current
    panel.hyper = QUICK
    # not trained(): it waits for the slot to be idle, and the stale one still runs
    with qtbot.waitSignal(panel.message, timeout=WAIT) as said:
        panel.train()
    qtbot.waitUntil(lambda: panel.report is not None, timeout=WAIT)
    r = panel.report
    assert said.args[0].startswith("fusion v1:") and r.version == 1 and panel.train_slot.busy
    messages = []
    panel.message.connect(messages.append)
    gate.open()
    qtbot.waitUntil(lambda: not panel.train_slot.busy and not panel.read_slot.busy,
                    timeout=WAIT)
    assert stale.cancel.cancelled and versions(lib, "colour") == [1]
    assert messages == [] and panel.report == r and panel.report.version == 1


def test_closing_the_library_stops_the_job_and_clears(qtbot, panel, lib, monkeypatch):
    label_colours(lib)
    opened(qtbot, panel, lib)
    trained(qtbot, panel)
    held_fit = hold_first_fit(monkeypatch)
    panel.hyper = SLOW
    panel.train()
    qtbot.waitUntil(held_fit.entered.is_set, timeout=WAIT)  # running, held at its first fit
    assert panel.train_slot.busy
    panel.set_library(None)
    assert not panel.train_slot.busy and not panel.read_slot.busy
    assert versions(lib, "colour") == [1]
    assert panel.report is None and panel.methods_model.rowCount() == 0
    assert panel.schema_box.count() == 0 and panel.version_box.count() == 0
    assert panel.heatmap.counts.size == 0 and panel.bars.series == {}
    assert panel.stack.currentWidget() is panel.hint and "Open a library" in panel.hint.text()
    assert not panel._top.isEnabled()


def test_empty_states_and_too_few_labels(qtbot, panel, lib):
    opened(qtbot, panel, lib, None)
    assert panel.hint.text().startswith("Label items in the Labeling panel first")
    assert not panel.train_button.isEnabled()
    ids = label_colours(lib, "colour")
    lib.labels.save_schema(Schema.of("few", ["x", "y"]))
    lib.labels.set_labels("few", {ids["red00"]: {"x"}, ids["red03"]: {"x"}, ids["blue02"]: {"y"}})
    panel.refresh()
    qtbot.waitUntil(lambda: panel.schema_box.count() == 2, timeout=WAIT)
    k = panel.schema_box.findText("few")
    panel.schema_box.setCurrentIndex(k)
    panel.schema_box.activated.emit(k)
    qtbot.waitUntil(lambda: panel.schema == "few", timeout=WAIT)
    assert panel.counts_label.text() == "3 labelled"
    with qtbot.waitSignal(panel.message, timeout=WAIT) as said:
        panel.train()
    assert "'y' has only one labelled item" in said.args[0]
    assert panel.error_label.isVisible() and "'y' has only one" in panel.error_label.text()
    assert versions(lib, "few") == []

"""The real main window, driven like a user: create, add, search, drop, paste, cancel."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication, QFileDialog

from mmstudio.core.library import Library
from mmstudio.core.samples import draw, write_video
from mmstudio.gui import session as session_module
from mmstudio.gui.main_window import MainWindow
from mmstudio.gui.models.results import ResultRole
from tests.gui.conftest import Gate
from tests.media_factory import broken_collection, good_collection

WAIT = 60_000


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    good_collection(folder)
    return folder


@pytest.fixture
def make_window(qtbot, tmp_path):
    windows = []

    def make(library: Path | None = None) -> MainWindow:
        settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(library or tmp_path / "library", settings=settings)
        window.opened_urls = []
        window.open_url = window.opened_urls.append
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: window.session.library is not None, timeout=WAIT)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


def wait_idle(qtbot, window: MainWindow) -> None:
    s = window.session
    qtbot.waitUntil(lambda: not (s.ingest_slot.busy or s.status_slot.busy or s.search_slot.busy
                                 or s.query_slot.busy or s.models_slot.busy), timeout=WAIT)


def add_and_wait(qtbot, window: MainWindow, folder: Path) -> None:
    window.session.add_folders([folder])
    wait_idle(qtbot, window)


def names_in_grid(window: MainWindow) -> list[str]:
    model = window.grid.model()
    return [Path(model.index(r, 0).data(ResultRole).path).name for r in range(model.rowCount())]


def search_text(qtbot, window: MainWindow, text: str) -> None:
    edit = window.query_bar.edit
    edit.clear()
    with qtbot.waitSignal(window.session.results_changed, timeout=WAIT):
        qtbot.keyClicks(edit, text)  # no Enter: the search starts when typing pauses


def drop(qtbot, widget, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(widget.rect().center())
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    event = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)
    assert event.isAccepted()


def test_create_library_add_folder_and_search_as_you_type(qtbot, make_window, media, monkeypatch):
    window = make_window()
    assert "empty" in window.hint.text()  # a new library says what to do
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(media))
    window.action_add.trigger()  # File ▸ Add folder…
    wait_idle(qtbot, window)
    assert window.session.counts["items"] == 10
    assert "10 items" in window.counts_label.text()
    assert "starter" in window.models_label.text()
    ingest = [e for e in window.jobs.entries if e.title.startswith("Adding")]
    assert ingest and ingest[0].state == "done" and "indexed" in ingest[0].detail

    search_text(qtbot, window, "sailing boats in the harbour at dawn")
    names = names_in_grid(window)
    assert names[0] == "boats.txt"
    # text reaches the starter space (texts, pictures through ConSE, video frames);
    # the two sounds live only in starter-audio, which text cannot query
    assert len(names) == 8 and window.grid.isVisible()
    assert window.query_bar.chip.isVisible() and window.query_bar.chip.modality == "text"
    # the first result is selected and previewed
    assert window.session.selected is not None and window.session.selected.path.endswith("boats.txt")

    # filter chips hide a modality without searching again
    window.chips["text"].setChecked(False)
    assert "boats.txt" not in names_in_grid(window)
    assert all(not n.endswith(".txt") for n in names_in_grid(window))
    window.chips["text"].setChecked(True)

    # clearing the chip clears the query and the results
    window.query_bar.chip.close.click()
    assert window.session.query is None and window.results.rowCount() == 0


def test_a_file_dropped_on_the_query_bar_becomes_the_query(qtbot, make_window, media):
    window = make_window()
    add_and_wait(qtbot, window, media)
    with qtbot.waitSignal(window.session.results_changed, timeout=WAIT):
        drop(qtbot, window.query_bar, [media / "pics" / "checker.png"])
    assert names_in_grid(window)[0] == "checker.png"
    assert window.query_bar.chip.modality == "image"
    assert window.query_bar.edit.text() == ""

    # a folder dropped on the window is added to the library
    extra = media.parent / "extra-drop"
    extra.mkdir(exist_ok=True)
    draw("dots", 96, seed=3).save(extra / "more-dots.png")
    drop(qtbot, window, [extra])
    wait_idle(qtbot, window)
    assert window.session.counts["items"] == 11


def test_a_picture_pasted_from_the_clipboard_searches(qtbot, make_window, media):
    window = make_window()
    add_and_wait(qtbot, window, media)
    picture = draw("stripes", 160, seed=0)  # the same picture as pics/stripes.png
    image = QImage(picture.tobytes(), picture.width, picture.height, 3 * picture.width,
                   QImage.Format.Format_RGB888).copy()
    QGuiApplication.clipboard().setImage(image)
    window.focus_query()
    with qtbot.waitSignal(window.session.results_changed, timeout=WAIT):
        qtbot.keyClick(window.query_bar.edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert names_in_grid(window)[0] == "stripes.png"
    assert window.query_bar.chip.modality == "image"
    assert window.session.query.path.parent == window.session.library.path / "queries"


def test_broken_files_show_in_the_errors_list(qtbot, make_window, tmp_path):
    window = make_window()
    broken = broken_collection(tmp_path / "broken")
    add_and_wait(qtbot, window, tmp_path / "broken")
    listed = {Path(path).name: reason for path, reason, _ in window.errors.rows}
    for name in ("empty.jpg", "truncated.jpg", "random.wav", "random.mp4", "bomb.png",
                 "binary.txt"):
        assert name in listed and listed[name], name
    assert "binary data" in listed["binary.txt"]
    assert window.errors_dock.windowTitle() == f"Errors ({len(window.errors.rows)})"
    assert len(broken) == 6
    assert window.errors_view.model().rowCount() == len(window.errors.rows)


def test_cancelling_an_ingest_leaves_a_consistent_library(qtbot, make_window, tmp_path,
                                                          monkeypatch):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(150):
        draw(("stripes", "checker", "circles", "gradient", "dots")[i % 5], 128, seed=i).save(
            folder / f"p{i:03d}.png")
    gate, real = Gate(), session_module.add_folders

    def held(library, paths, *, progress, cancel):  # waits after its 6th file is done
        def report(p):
            if p.done > 5 and not gate.entered.is_set():
                gate.wait()
            progress(p)
        return real(library, paths, progress=report, cancel=cancel)

    monkeypatch.setattr(session_module, "add_folders", held)
    window = make_window()
    qtbot.waitUntil(lambda: not window.session.models_slot.busy, timeout=WAIT)
    window.session.add_folders([folder])
    qtbot.waitUntil(gate.entered.is_set, timeout=WAIT)  # 6 files done, the job held there
    entry = next(e for e in window.jobs.entries if e.title.startswith("Adding"))
    assert entry.running
    window.jobs_panel.view.setFocus()
    qtbot.keyClick(window.jobs_panel.view, Qt.Key.Key_Escape)  # Esc in the jobs panel
    gate.open()
    wait_idle(qtbot, window)
    entry = next(e for e in window.jobs.entries if e.title.startswith("Adding"))
    assert entry.state == "cancelled"
    library = window.session.library
    files = library.catalog.files()
    done = [f for f in files if f.state == "ok"]
    assert 0 < len(done) < 150
    # the rest stay pending (the next job does them) and have nothing in the store:
    # every point stored belongs to a committed file, and every committed file has its
    # points
    assert {f.state for f in files} <= {"ok", "pending"}
    assert library.catalog.counts()["segments"] == len(done)  # one segment per picture
    assert library.store.count("starter") == len(done)
    assert window.session.counts["items"] == len(done)
    add_and_wait(qtbot, window, folder)  # adding again finishes the job
    assert window.session.counts["items"] == 150


def test_video_result_opens_the_player_at_the_matched_moment(qtbot, make_window, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    write_video(folder / "three-scenes.mp4",
                [("checker", 1, 2.0), ("circles", 2, 2.0), ("stripes", 3, 2.0)], fps=5, size=128)
    draw("gradient", 128, seed=4).save(folder / "other.png")
    query = tmp_path / "scene.png"
    draw("stripes", 128, seed=3).save(query)  # the third scene: 4 s to 6 s
    window = make_window()
    add_and_wait(qtbot, window, folder)
    with qtbot.waitSignal(window.session.results_changed, timeout=WAIT):
        window.session.files_dropped([query])
    model = window.grid.model()
    row = next(r for r in range(model.rowCount())
               if model.index(r, 0).data(ResultRole).modality == "video")
    window.grid.setCurrentIndex(model.index(row, 0))
    result = window.session.selected
    assert result.modality == "video" and 4.0 <= result.start < 6.0
    player = window.preview.player
    assert player is not None, "QtMultimedia is missing: install libpulse0"
    qtbot.waitUntil(lambda: abs(player.position() - result.start * 1000) < 300, timeout=WAIT)
    assert window.preview.current_view == "video"


def test_keyboard_focus_move_open_and_find_similar(qtbot, make_window, media):
    window = make_window()
    add_and_wait(qtbot, window, media)
    window.grid.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert window.query_bar.edit.hasFocus()
    search_text(qtbot, window, "cats purr")
    window.grid.setFocus()
    first = window.session.selected
    qtbot.keyClick(window.grid, Qt.Key.Key_Right)
    second = window.session.selected
    assert second is not None and second is not first
    qtbot.keyClick(window.grid, Qt.Key.Key_Return)
    assert window.opened_urls == [QUrl.fromLocalFile(second.path)]
    with qtbot.waitSignal(window.session.results_changed, timeout=WAIT):
        qtbot.keyClick(window.grid, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.session.query.path == Path(second.path)
    assert names_in_grid(window)[0] == Path(second.path).name
    window.query_bar.edit.setFocus()
    qtbot.keyClick(window.query_bar.edit, Qt.Key.Key_Slash)
    assert window.query_bar.edit.text().endswith("/")  # typing a slash is not the shortcut


def test_window_geometry_and_thumbnail_size_are_remembered(qtbot, make_window, tmp_path):
    window = make_window()
    window.resize(700, 500)  # the offscreen screen is 800 x 600
    window.settings.setValue("thumb_size", 224)
    window.close()
    again = make_window(tmp_path / "library")
    assert (again.width(), again.height()) == (700, 500)
    assert again.grid.delegate.thumb_size == 224
    assert again.settings.value("last_library") == str((tmp_path / "library").resolve())


def test_record_button_says_why_when_recording_is_unavailable(qtbot, make_window, monkeypatch):
    from mmstudio.core import microphone

    monkeypatch.setattr(microphone, "unavailable", lambda: "recording needs PortAudio")
    window = make_window()
    qtbot.waitUntil(lambda: "PortAudio" in window.query_bar.mic.toolTip(), timeout=WAIT)
    assert not window.query_bar.mic.isEnabled()


def test_a_library_in_use_elsewhere_is_refused_with_a_message(qtbot, make_window, tmp_path):
    other = Library(tmp_path / "busy")
    try:
        settings = QSettings(str(tmp_path / "s2.ini"), QSettings.Format.IniFormat)
        window = MainWindow(tmp_path / "busy", settings=settings)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: hasattr(window, "open_error"), timeout=WAIT)
        assert window.session.library is None
        assert "in use by PID" in window.open_error.text()
        assert window.library_label.text() == "no library"
        window.close()
    finally:
        other.close()


def test_a_result_whose_file_is_gone_does_not_break_the_window(qtbot, make_window, tmp_path):
    folder = tmp_path / "soon-gone"
    good_collection(folder)
    window = make_window()
    add_and_wait(qtbot, window, folder)
    shutil.rmtree(folder / "pics")
    search_text(qtbot, window, "stripes")
    wait_idle(qtbot, window)
    window.grid.request_visible_thumbnails()
    qtbot.waitUntil(lambda: not window.grid.thumb_slot.busy, timeout=WAIT)
    assert window.isVisible() and window.results.rowCount() > 0

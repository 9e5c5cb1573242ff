"""The preview pane: each modality opened at its moment, errors shown, never raised."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from mmstudio.core.ingest import index
from mmstudio.core.library import Library
from mmstudio.core.samples import draw
from mmstudio.core.search import SearchQuery, SearchResult, encode_query, search
from mmstudio.gui.views import preview as preview_module
from mmstudio.gui.views.media_widgets import Multimedia
from mmstudio.gui.views.preview import PreviewPane
from tests.fakes import FakeEncoder
from tests.gui.conftest import open_pane
from tests.test_preview_core import LONG_TEXT, preview_collection

LOADED = 30_000  # ms to wait for a load: generous (a loaded 2-core machine), not a timing check


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    root = tmp_path_factory.mktemp("preview-gui")
    files = preview_collection(root / "media")
    query = root / "waves.png"
    draw("waves", 96, seed=6).save(query)
    files["query"] = query
    with Library(root / "lib") as lib:
        index(lib, [root / "media"], encoders=[FakeEncoder()])
        yield lib, files


@pytest.fixture
def pane(qtbot, indexed):
    pane = open_pane(qtbot, indexed[0], 520)
    yield pane
    pane.shutdown()


def found(lib, files, query_name: str, path: Path) -> tuple[SearchResult, dict[str, np.ndarray]]:
    """The result for `path` when searching with files[query_name], and the query's vectors."""
    encoders = [FakeEncoder()]
    query = SearchQuery(path=files[query_name])
    results = search(lib, query, encoders=encoders, limit=50)
    result = next(r for r in results if r.path == str(path))
    return result, encode_query(query, encoders)


def result_for(lib, file: Path, index: int = 0, **changes) -> SearchResult:
    """A result pointing at segment `index` of `file`, as a search would give it."""
    seg = lib.catalog.segments_of(str(file))[index]
    result = SearchResult(seg.item_id, seg.path, seg.modality, 1.0, 0.9, "fake-visual", seg.id,
                          seg.start, seg.end, seg.char_start, seg.char_end)
    return dataclasses.replace(result, **changes)


def test_open_a_video_result_and_the_player_is_at_the_moment(qtbot, pane, indexed):
    lib, files = indexed
    result, vectors = found(lib, files, "query", files["video"])
    result = dataclasses.replace(result, start=2.0, end=2.0)
    pane.show_result(result, vectors)
    qtbot.waitUntil(lambda: pane.current_view == "video", timeout=LOADED)
    player = pane.player
    qtbot.waitUntil(lambda: abs(player.position() - 2000) <= 250, timeout=LOADED)
    assert player.playbackState() != type(player).PlaybackState.PlayingState  # paused there
    # the strip: the query's similarity along the whole video, the moment, the playhead
    qtbot.waitUntil(lambda: pane.strip.duration == pytest.approx(4.0, abs=0.3), timeout=LOADED)
    curve = pane.strip.curve
    assert len(curve) >= 4 and curve[-1].similarity > curve[0].similarity  # waves, like the query
    assert pane.strip.position == pytest.approx(2.0, abs=0.25)


def test_clicking_the_strip_seeks_and_space_plays_and_pauses(qtbot, pane, indexed):
    lib, files = indexed
    pane.show_result(result_for(lib, files["video"], 2), encode_query(
        SearchQuery(path=files["query"]), [FakeEncoder()]))
    player = pane.player
    qtbot.waitUntil(lambda: abs(player.position() - 2000) <= 250, timeout=LOADED)
    strip = pane.strip
    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=QPoint(strip.width() // 4, 10))
    qtbot.waitUntil(lambda: abs(player.position() - 1000) <= 250, timeout=LOADED)
    states = type(player).PlaybackState
    pane.toggle_playback()
    qtbot.waitUntil(lambda: player.playbackState() == states.PlayingState, timeout=LOADED)
    pane.toggle_playback()
    qtbot.waitUntil(lambda: player.playbackState() == states.PausedState, timeout=LOADED)


def test_audio_opens_at_its_moment_with_a_waveform(qtbot, pane, indexed):
    lib, files = indexed
    result, vectors = found(lib, files, "noise", files["talk"])
    pane.show_result(result, vectors)
    qtbot.waitUntil(lambda: pane.current_view == "audio", timeout=LOADED)
    wave = pane.waveform.waveform
    assert wave is not None and wave.duration == pytest.approx(8.0, abs=0.01)
    assert wave.peaks.ndim == 2 and np.isfinite(wave.peaks).all()
    assert len(pane.waveform.curve) >= 4  # the query's similarity over the waveform
    assert result.start >= 2.5  # the noise, in the middle of the file
    qtbot.waitUntil(lambda: abs(pane.player.position() - result.start * 1000) <= 250,
                    timeout=LOADED)


def test_a_video_with_a_soundtrack_opens_at_its_moment(qtbot, pane, indexed):
    lib, files = indexed
    pane.show_result(result_for(lib, files["voiced"], 3))  # the frame at 3 s; no query vectors
    qtbot.waitUntil(lambda: pane.current_view == "video", timeout=LOADED)
    qtbot.waitUntil(lambda: abs(pane.player.position() - 3000) <= 250, timeout=LOADED)
    assert pane.strip.curve == [] and "search" in pane.strip.placeholder


def test_image_shows_and_zooms_around_the_cursor(qtbot, pane, indexed):
    lib, files = indexed
    pane.show_result(result_for(lib, files["stripes"]))
    qtbot.waitUntil(lambda: pane.current_view == "image", timeout=LOADED)
    view = pane.image_view
    before = view.transform().m11()
    centre = QPointF(view.viewport().rect().center())
    wheel = QWheelEvent(centre, view.viewport().mapToGlobal(centre), QPoint(0, 0), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), wheel)
    assert view.transform().m11() > before * 1.3 and not view.fitting
    view.fit()
    assert view.transform().m11() == pytest.approx(before) and view.fitting


def test_text_shows_the_matched_chunk_highlighted_and_in_view(qtbot, pane, indexed):
    lib, files = indexed
    chunks = lib.catalog.segments_of(str(files["long"]))
    assert len(chunks) >= 4
    result = result_for(lib, files["long"], len(chunks) - 2)
    pane.show_result(result)
    qtbot.waitUntil(lambda: pane.current_view == "text", timeout=LOADED)
    view = pane.text_view
    (selection,) = view.extraSelections()
    chunk = LONG_TEXT[result.char_start:result.char_end]
    # Qt shows each line end as a paragraph separator
    assert selection.cursor.selectedText() == chunk.replace("\r\n", "\u2029")
    assert (selection.cursor.selectionStart(), selection.cursor.selectionEnd()) == view.match_span
    qtbot.waitUntil(lambda: view.verticalScrollBar().value() > 0, timeout=LOADED)
    top = view.cursorRect(selection.cursor).top()
    assert 0 <= top < view.viewport().height()  # the chunk is on screen


def test_find_similar_emits_the_result_shown(qtbot, pane, indexed):
    lib, files = indexed
    result = result_for(lib, files["cats"])
    pane.show_result(result)
    qtbot.waitUntil(lambda: pane.current_view == "text", timeout=LOADED)
    with qtbot.waitSignal(pane.find_similar, timeout=LOADED) as signal:
        qtbot.mouseClick(pane._find, Qt.MouseButton.LeftButton)
    assert signal.args == [result]


@pytest.mark.parametrize("name", ["stripes", "video", "talk", "cats"])
def test_a_missing_file_shows_an_error_not_an_exception(qtbot, pane, indexed, tmp_path, name):
    lib, files = indexed
    gone = tmp_path / f"gone{files[name].suffix}"
    pane.show_result(result_for(lib, files[name], path=str(gone)))
    qtbot.waitUntil(lambda: pane.current_view == "error", timeout=LOADED)
    assert "not found" in pane._error.text() and not pane._find.isEnabled()


def test_an_unplayable_video_shows_an_error(qtbot, pane, indexed, tmp_path):
    lib, files = indexed
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(1).bytes(20_000))
    pane.show_result(result_for(lib, files["video"], path=str(bad)))
    qtbot.waitUntil(lambda: pane.current_view == "error", timeout=LOADED)
    assert "cannot play" in pane._error.text()


def test_a_new_selection_supersedes_a_loading_one(qtbot, pane, indexed):
    lib, files = indexed
    pane.show_result(result_for(lib, files["talk"]))
    pane.show_result(result_for(lib, files["video"], 1))
    pane.show_result(result_for(lib, files["checker"]))
    qtbot.waitUntil(lambda: pane.current_view == "image", timeout=LOADED)
    # every load has ended and said so (the superseded ones too): nothing stale can come
    qtbot.waitUntil(lambda: not pane._slot.busy, timeout=LOADED)
    assert pane.current_view == "image" and pane.result.path == str(files["checker"])
    assert pane._player is None or pane._player.source().isEmpty()  # no stale media opened
    pane.show_result(None)
    assert pane.current_view == "empty" and not pane._find.isEnabled()


def test_closing_the_library_stops_and_clears(qtbot, pane, indexed):
    lib, files = indexed
    pane.show_result(result_for(lib, files["video"], 1))
    qtbot.waitUntil(lambda: abs(pane.player.position() - 1000) <= 250, timeout=LOADED)
    pane.set_library(None)
    assert pane.current_view == "empty" and pane.player.source().isEmpty()
    pane.set_library(lib)


def test_without_qtmultimedia_pictures_still_show_and_media_says_why(qtbot, indexed, monkeypatch):
    lib, files = indexed
    monkeypatch.setattr(preview_module, "multimedia",
                        lambda: Multimedia(None, "Playback is not available here (test)."))
    pane = PreviewPane()
    qtbot.addWidget(pane)
    pane.set_library(lib)
    try:
        pane.show_result(result_for(lib, files["video"], 1))
        qtbot.waitUntil(lambda: pane.current_view == "video", timeout=LOADED)
        assert pane.player is None
        pane.toggle_playback()  # nothing to play: no error
        pane.show_result(result_for(lib, files["stripes"]))
        qtbot.waitUntil(lambda: pane.current_view == "image", timeout=LOADED)
    finally:
        pane.shutdown()


def test_the_player_is_driven_with_the_gil_released(qtbot, indexed, monkeypatch):
    """play, pause, stop and setPosition go through QMetaObject.invokeMethod: a plain
    call holds the GIL while the FFmpeg backend may wait for a renderer thread that needs
    it (a deadlock seen in CI). A direct Python-level call is recorded here."""
    lib, files = indexed
    mm = preview_module.multimedia().classes
    direct: list[str] = []

    class RecordingPlayer(mm.QMediaPlayer):
        def play(self):
            direct.append("play")
            super().play()

        def pause(self):
            direct.append("pause")
            super().pause()

        def stop(self):
            direct.append("stop")
            super().stop()

        def setPosition(self, ms):  # noqa: N802 (Qt's name)
            direct.append("setPosition")
            super().setPosition(ms)

    classes = dataclasses.replace(preview_module.multimedia(), classes=type(mm)(
        **{**vars(mm), "QMediaPlayer": RecordingPlayer}))
    monkeypatch.setattr(preview_module, "multimedia", lambda: classes)
    pane = open_pane(qtbot, lib, 520)
    try:
        result = result_for(lib, files["talk"], 1)
        pane.show_result(result)
        player = pane.player
        assert isinstance(player, RecordingPlayer)
        qtbot.waitUntil(lambda: abs(player.position() - result.start * 1000) <= 250,
                        timeout=LOADED)  # opened at the moment: setPosition, then pause
        states = type(player).PlaybackState
        pane.toggle_playback()
        qtbot.waitUntil(lambda: player.playbackState() == states.PlayingState, timeout=LOADED)
        pane.toggle_playback()
        qtbot.waitUntil(lambda: player.playbackState() == states.PausedState, timeout=LOADED)
        pane.set_library(None)  # stop, and the file released
        assert player.playbackState() == states.StoppedState and player.source().isEmpty()
    finally:
        pane.shutdown()
    assert direct == []

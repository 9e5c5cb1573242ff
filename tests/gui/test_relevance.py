"""The preview's relevance bar: maps drawn over each modality, re-coloured without
recomputing, cached per method, cancelled when the selection moves on, errors shown.

A fake `explain` returns hand-made explanations, so these tests check the drawing and
the task handling, not the methods (tests/test_explain*.py do those); one test at the
end runs the real window, starter models and explain.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtGui import QTextCursor, QTextFormat

from mmstudio.core.errors import Cancelled, MmstudioError
from mmstudio.core.library import Library
from mmstudio.core.preview import CurvePoint, TextPreview
from mmstudio.core.samples import draw, tone, write_video
from mmstudio.core.search import SearchQuery, SearchResult
from mmstudio.explain import Explanation, TokenScore, cache_key, colorize
from mmstudio.gui.main_window import MainWindow
from mmstudio.gui.models.results import ResultRole
from mmstudio.gui.views import preview as preview_module
from mmstudio.gui.views import relevance as relevance_module
from mmstudio.gui.views.preview import PreviewPane
from tests.gui.conftest import Gate, open_pane

WAIT = 30_000  # ms: generous (a loaded 2-core machine), not a timing check
TEXT = "Cats purr & chase <mice> around the barn.\r\nThe dog sleeps."
QUERY = SearchQuery(text="a cat & <mouse>")
VECTORS = {"fake": np.full(4, 0.5, np.float32)}
CURVE = [CurvePoint(t, t, 0.2 + 0.1 * t) for t in (0.0, 1.0, 2.0, 3.0)]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """One file per modality, and an empty library (the fake explain never reads it)."""
    root = tmp_path_factory.mktemp("relevance-gui")
    files = {"picture": root / "picture.png", "video": root / "scenes.mp4",
             "sound": root / "tone.wav", "text": root / "cats.txt"}
    draw("stripes", 160).resize((240, 160)).save(files["picture"])
    write_video(files["video"], [("dots", 5, 2.0), ("waves", 6, 2.0)], fps=5, size=96)
    sf.write(files["sound"], tone("chirp", 2.0, 16000), 16000)
    files["text"].write_bytes(TEXT.encode("utf-8"))
    with Library(root / "lib") as lib:
        yield lib, files


def result_of(path: Path, modality: str, **moment) -> SearchResult:
    item = zlib.crc32(str(path).encode())
    return SearchResult(item, str(path), modality, 1.0, 0.42, "fake", item,
                        moment.get("start"), moment.get("end"),
                        moment.get("char_start"), moment.get("char_end"))


def explanation_for(result: SearchResult, method: str) -> Explanation:
    """What a real explain gives back, shaped by hand for each modality."""
    ramp = np.linspace(0.0, 1.0, 240, dtype=np.float32)
    if result.modality == "image":
        return Explanation(method, "fake", "image", 0.42,
                           heatmap=np.tile(ramp, (160, 1)), seconds=0.3)
    if result.modality == "video":
        return Explanation(method, "fake", "video", 0.42, heatmap=np.ones((96, 96), np.float32),
                           frame_time=3.0, curve=CURVE)
    if result.modality == "audio":
        db = np.full((64, 100), -80.0, np.float32)
        db[0] = 0.0  # all the sound in the lowest band
        return Explanation(method, "fake", "audio", 0.42, heatmap=np.ones((64, 100), np.float32),
                           spectrogram=db, window=(0.5, 1.5), curve=CURVE)
    return Explanation(method, "fake", "text", 0.42, tokens=[
        TokenScore("Cats", 0, 4, 2.0, 1.0), TokenScore("<mice>", 18, 24, -1.0, -0.5),
        TokenScore("dog", 47, 50, 1.0, 0.5)],
        query_tokens=[TokenScore("cat", 2, 5, 1.0, 1.0), TokenScore("<mouse>", 8, 15, 0.5, 0.5)])


class FakeExplain:
    """Stands in for mmstudio.explain.explain and counts the methods asked for."""

    def __init__(self, fail: str | None = None) -> None:
        self.methods: list[str] = []
        self.fail = fail

    def __call__(self, library, query, result, *, vectors, method, progress, cancel):
        assert query == QUERY and vectors is not None
        self.methods.append(method)
        if self.fail:
            raise MmstudioError(self.fail)
        return explanation_for(result, method)


@pytest.fixture
def fake(monkeypatch) -> FakeExplain:
    fake = FakeExplain()
    monkeypatch.setattr(relevance_module, "explain", fake)
    monkeypatch.setattr(preview_module, "methods_for", lambda library, result: ["gradcam", "rise"])
    return fake


@pytest.fixture
def pane(qtbot, media):
    pane = open_pane(qtbot, media[0], 620)
    yield pane
    pane.shutdown()


def shown(qtbot, pane: PreviewPane, **expected) -> Explanation:
    """Wait until the bar has drawn an explanation like `expected` (method=..., ...)."""
    def drawn() -> bool:
        r = pane.relevance.shown
        return r is not None and all(
            getattr(r, k, getattr(r.explanation, k, None)) == v for k, v in expected.items())
    qtbot.waitUntil(drawn, timeout=WAIT)
    return pane.relevance.shown.explanation


def test_an_image_gets_an_overlay_over_the_whole_picture(qtbot, pane, media, fake):
    pane.show_result(result_of(media[1]["picture"], "image"), VECTORS, QUERY)
    shown(qtbot, pane)
    overlay = pane.image_overlay
    assert pane.current_view == "image" and overlay.isVisible()
    assert (overlay.pixmap().width(), overlay.pixmap().height()) == (240, 160)
    assert overlay.sceneBoundingRect() == pane.image_view.sceneRect()
    assert overlay.opacity() == pytest.approx(0.55)
    assert "Grad-CAM" in pane.relevance.status.text() and "0.42" in pane.relevance.status.text()

    pane.relevance.opacity_slider.setValue(20)
    assert overlay.opacity() == pytest.approx(0.2)
    pane.relevance.toggle.setChecked(False)
    assert not overlay.isVisible()
    pane.relevance.toggle.setChecked(True)
    qtbot.waitUntil(overlay.isVisible, timeout=WAIT)
    assert fake.methods == ["gradcam"]  # the second time from the cache


def test_another_colour_map_recolours_without_explaining_again(qtbot, pane, media, fake):
    pane.show_result(result_of(media[1]["picture"], "image"), VECTORS, QUERY)
    shown(qtbot, pane, colormap="inferno")
    pane.relevance.colormap_box.setCurrentText("viridis")
    shown(qtbot, pane, colormap="viridis")
    assert fake.methods == ["gradcam"]
    pixel = pane.image_overlay.pixmap().toImage().pixelColor(239, 80)  # relevance 1.0
    r, g, b, _ = colorize(np.ones((1, 1)), "viridis")[0, 0]
    assert (pixel.red(), pixel.green(), pixel.blue()) == (r, g, b)


def test_a_colour_map_chosen_as_the_explanation_lands_is_not_lost(qtbot, two_pool_threads,
                                                                  pane, media, fake):
    # the explanation is drawn, but its job has not said `finished` yet: held there
    gate = Gate()

    def hold_after_result(job):
        job.signals.result.connect(lambda _: gate.wait(), Qt.ConnectionType.DirectConnection)
        pane.relevance.slot.job_started.disconnect(hold_after_result)

    pane.relevance.slot.job_started.connect(hold_after_result)
    pane.show_result(result_of(media[1]["picture"], "image"), VECTORS, QUERY)
    shown(qtbot, pane, colormap="inferno")
    qtbot.waitUntil(gate.entered.is_set, timeout=WAIT)
    assert pane.relevance.slot.busy
    pane.relevance.colormap_box.setCurrentText("viridis")
    gate.open()
    shown(qtbot, pane, colormap="viridis")
    assert fake.methods == ["gradcam"]


def test_another_method_explains_again_and_comes_back_from_the_cache(qtbot, pane, media, fake):
    picture = result_of(media[1]["picture"], "image")
    pane.show_result(picture, VECTORS, QUERY)
    shown(qtbot, pane, method="gradcam")
    box = pane.relevance.method_box
    assert [box.itemText(i) for i in range(box.count())] == ["Grad-CAM", "RISE (random masks)"]
    box.setCurrentIndex(1)
    shown(qtbot, pane, method="rise")
    box.setCurrentIndex(0)
    shown(qtbot, pane, method="gradcam")
    assert fake.methods == ["gradcam", "rise"]
    # the choice stays for the next result that offers it
    pane.show_result(result_of(media[1]["text"], "text", char_start=0, char_end=20), VECTORS, QUERY)
    shown(qtbot, pane, method="gradcam", modality="text")
    # a new library forgets the explanations
    assert pane.relevance.cache.get(cache_key(QUERY, picture, "rise")) is not None
    pane.set_library(media[0])
    assert pane.relevance.cache.get(cache_key(QUERY, picture, "rise")) is None


def test_a_new_selection_cancels_a_slow_explanation(qtbot, pane, media, monkeypatch, fake):
    gate, tokens = Gate(), []  # never opened: only the cancel lets the job go

    def slow(library, query, result, *, vectors, method, progress, cancel):
        if result.modality == "image":
            tokens.append(cancel)
            gate.wait(cancel)
            raise Cancelled("cancelled")
        return fake(library, query, result, vectors=vectors, method=method, progress=progress,
                    cancel=cancel)

    monkeypatch.setattr(relevance_module, "explain", slow)
    pane.show_result(result_of(media[1]["picture"], "image"), VECTORS, QUERY)
    qtbot.waitUntil(gate.entered.is_set, timeout=WAIT)
    assert "Computing Grad-CAM" in pane.relevance.status.text()
    pane.show_result(result_of(media[1]["text"], "text", char_start=0, char_end=20), VECTORS, QUERY)
    assert tokens[0].cancelled
    shown(qtbot, pane, modality="text")
    assert pane.current_view == "text" and not pane.image_overlay.isVisible()


def test_text_words_are_tinted_and_the_query_words_shown(qtbot, pane, media, fake, monkeypatch):
    # a window of the text, as a huge file gets: the tokens' offsets are into the whole text
    monkeypatch.setattr(preview_module, "preview_text",
                        lambda path, start, end: TextPreview(TEXT[2:], 2, len(TEXT)))
    pane.show_result(result_of(media[1]["text"], "text", char_start=5, char_end=41), VECTORS, QUERY)
    shown(qtbot, pane, modality="text")
    view = pane.text_view

    def tint(index: int):  # the background of TEXT[index]
        cursor = QTextCursor(view.document())
        cursor.setPosition(view_position(index) + 1)
        return cursor.charFormat()

    def view_position(index: int) -> int:  # one "\r\n" before "dog" is one position
        return index - 2 - (index > 42)

    warm, cool = tint(2).background().color(), tint(19).background().color()
    assert tint(2).hasProperty(QTextFormat.Property.BackgroundBrush)  # "ts" of "Cats"
    assert warm.red() > warm.blue() and warm.alpha() > 0
    assert cool.blue() > cool.red() and 0 < cool.alpha() < warm.alpha()
    assert not tint(10).hasProperty(QTextFormat.Property.BackgroundBrush)  # "chase": no token
    assert tint(48).background().color().red() > 0  # "dog", after the line break
    (match,) = view.extraSelections()  # the match stays marked, underlined over the tints
    assert match.cursor.selectedText() == TEXT[5:41]

    line = pane.relevance.query_line
    assert line.isVisible() and line.text().startswith("Query: ")
    assert "&lt;mouse&gt;" in line.text() and "<mouse>" not in line.text()
    assert line.text().count("background-color") == 2

    pane.relevance.toggle.setChecked(False)
    assert not tint(2).hasProperty(QTextFormat.Property.BackgroundBrush) and not line.isVisible()


def test_sound_is_explained_on_a_spectrogram_and_the_waveform_still_seeks(qtbot, pane, media,
                                                                           fake):
    pane.show_result(result_of(media[1]["sound"], "audio", start=0.5, end=1.5), VECTORS, QUERY)
    shown(qtbot, pane, modality="audio")
    spectrogram = pane.spectrogram
    assert spectrogram.isVisible() and spectrogram.overlay.isVisible()
    picture = spectrogram.picture.pixmap().toImage()
    assert (picture.width(), picture.height()) == (100, 64)
    assert picture.pixelColor(50, 63).value() == 255 and picture.pixelColor(50, 0).value() == 0
    assert spectrogram.overlay.sceneBoundingRect() == spectrogram.picture.sceneBoundingRect()
    assert (spectrogram.start_label.text(), spectrogram.end_label.text()) == ("00:00.5", "00:01.5")
    assert pane.waveform.curve == CURVE  # the library had none: the explanation's
    player = pane.player
    qtbot.waitUntil(lambda: abs(player.position() - 500) <= 250, timeout=WAIT)
    wave = pane.waveform
    qtbot.mouseClick(wave, Qt.MouseButton.LeftButton, pos=QPoint(wave.width() * 3 // 4, 20))
    qtbot.waitUntil(lambda: abs(player.position() - 1500) <= 250, timeout=WAIT)


def test_a_video_goes_to_the_explained_frame_with_its_map_over_it(qtbot, pane, media, fake):
    pane.show_result(result_of(media[1]["video"], "video", start=1.0, end=1.0), VECTORS, QUERY)
    shown(qtbot, pane, modality="video")
    player, overlay = pane.player, pane.video_overlay
    qtbot.waitUntil(lambda: abs(player.position() - 3000) <= 250, timeout=WAIT)
    qtbot.waitUntil(overlay.isVisible, timeout=WAIT)
    assert player.playbackState() != type(player).PlaybackState.PlayingState
    assert overlay.sceneBoundingRect() == pane.video_view.sceneRect()
    assert pane.strip.curve == CURVE
    strip = pane.strip
    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=QPoint(strip.width() // 8, 10))
    qtbot.waitUntil(lambda: not overlay.isVisible(), timeout=WAIT)  # another frame now


def test_a_failed_explanation_is_said_in_the_bar_and_the_picture_stays(qtbot, pane, media, fake):
    fake.fail = "no relevance model for this space: add a CLIP profile"
    pane.show_result(result_of(media[1]["picture"], "image"), VECTORS, QUERY)
    qtbot.waitUntil(lambda: "add a CLIP profile" in pane.relevance.status.text(), timeout=WAIT)
    assert pane.current_view == "image" and not pane.image_overlay.isVisible()
    assert not pane._pixmap_item.pixmap().isNull() and pane._find.isEnabled()


def test_without_a_query_the_bar_says_to_search(qtbot, pane, media, fake):
    pane.show_result(result_of(media[1]["picture"], "image"))
    qtbot.waitUntil(lambda: pane.current_view == "image", timeout=WAIT)
    bar = pane.relevance
    assert "Search to see why" in bar.status.text()
    assert not bar.toggle.isEnabled() and not bar.method_box.isEnabled()
    assert fake.methods == [] and not pane.image_overlay.isVisible()


@pytest.mark.slow
def test_the_window_explains_a_picture_found_by_words_with_the_starter_models(qtbot, tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for n, pattern in enumerate(("stripes", "circles")):
        draw(pattern, 200, seed=n).resize((240, 200)).save(folder / f"{pattern}.png")
    window = MainWindow(tmp_path / "library",
                        settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    try:
        session = window.session
        qtbot.waitUntil(lambda: session.library is not None, timeout=60_000)
        session.add_folders([folder])
        qtbot.waitUntil(lambda: session.counts.get("items") == 2 and not session.ingest_slot.busy,
                        timeout=120_000)
        with qtbot.waitSignal(session.results_changed, timeout=60_000):
            session.search_text("zebra stripes")
        model = window.grid.model()
        row = next(r for r in range(model.rowCount())
                   if model.index(r, 0).data(ResultRole).modality == "image")
        window.grid.setCurrentIndex(model.index(row, 0))
        pane = window.preview
        qtbot.waitUntil(lambda: pane.relevance.shown is not None
                        or "No relevance" in pane.relevance.status.text(), timeout=120_000)
        explanation = pane.relevance.shown.explanation
        assert explanation.method == pane.relevance.method == "gradcam"
        assert explanation.heatmap.shape == (200, 240) and explanation.heatmap.max() > 0
        overlay = pane.image_overlay
        assert overlay.isVisible() and (overlay.pixmap().width(), overlay.pixmap().height()) \
            == (240, 200)
        assert overlay.sceneBoundingRect() == pane.image_view.sceneRect()
        assert "Grad-CAM" in pane.relevance.status.text()
        assert pane.relevance.query_line.isVisible()  # the words of the query, tinted
    finally:
        window.close()

"""The preview pane: the selected result, opened at its matched moment.

Pictures zoom and pan; videos and sounds open paused at the moment (the frame or the
waveform is there to see, and Space plays from it) with a strip of the query's
similarity along the whole file; text shows the matched chunk highlighted. Under a
query, the relevance bar explains the match and the pane draws it: a heatmap over the
picture or the explained frame, a spectrogram for sound, tinted words for text.

Everything that reads a file runs as one job in the pane's TaskSlot (`load_preview`):
a new selection cancels the stale load, and the GUI thread only renders what comes
back. QMediaPlayer decodes on its own threads. Explanations run on the bar's own slot.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import Q_ARG, QMetaObject, QObject, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QGraphicsPixmapItem,
    QGraphicsScene,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from mmstudio.core.errors import Cancelled, MediaError
from mmstudio.core.jobs import CancelToken, ProgressCallback, no_progress
from mmstudio.core.preview import (
    CurvePoint,
    TextPreview,
    Waveform,
    preview_image,
    preview_text,
    similarity_curve,
    waveform_peaks,
)
from mmstudio.core.search import SearchQuery, SearchResult
from mmstudio.explain import methods_for
from mmstudio.gui.style import clock, moment_text
from mmstudio.gui.views.media_widgets import (
    HeatmapOverlay,
    MatchTextView,
    SpectrogramView,
    Timeline,
    ZoomView,
    multimedia,
    to_qimage,
)
from mmstudio.gui.views.relevance import RelevanceBar, Rendered, token_colour
from mmstudio.gui.workers import TaskSlot

log = logging.getLogger(__name__)

VIEWS = ("empty", "loading", "image", "video", "audio", "text", "error")
# An explained frame's map shows while the player is this close to it (seconds).
FRAME_TOLERANCE = 0.5


# ---------------------------------------------------------------------------- the job


@dataclass(frozen=True)
class Loaded:
    """What `load_preview` read for one result (QImage is safe to build off the GUI thread)."""

    result: SearchResult
    image: QImage | None = None
    text: TextPreview | None = None
    curve: list[CurvePoint] = field(default_factory=list)
    waveform: Waveform | None = None
    note: str = ""  # why there is no curve
    methods: list[str] = field(default_factory=list)  # relevance methods, best first


def load_preview(
    result: SearchResult,
    library: object | None,
    vectors: Mapping[str, np.ndarray] | None,
    explainable: bool = False,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> Loaded:
    """A job: read what the pane needs to show `result`. MediaError for a bad file.

    explainable: a query is there to explain the match with: list the methods (which
    may look at the library's encoders, so not on the GUI thread).
    """
    path = Path(result.path)
    if not path.is_file():
        raise MediaError(result.path, "file not found: it was moved or deleted after indexing")
    methods = _methods(result, library) if explainable else []
    if result.modality == "image":
        return Loaded(result, image=_to_qimage(preview_image(path)), methods=methods)
    if result.modality == "text":
        return Loaded(result, text=preview_text(path, result.char_start, result.char_end),
                      methods=methods)
    curve = _curve(result, library, vectors, progress, cancel)
    waveform = None
    if result.modality == "audio":
        waveform = waveform_peaks(path, progress=progress, cancel=cancel)
    note = ("" if curve else "search to see the similarity along the file" if not vectors
            else "the query has no vectors in this file's spaces")
    return Loaded(result, curve=curve, waveform=waveform, note=note, methods=methods)


def _curve(result, library, vectors, progress, cancel) -> list[CurvePoint]:
    if library is None or not vectors:
        return []
    try:
        return similarity_curve(library, result.path, vectors, result.space,
                                progress=progress, cancel=cancel)
    except Cancelled:
        raise
    except Exception:  # the strip is a bonus: the file still plays without it
        log.warning("no similarity curve for %s", result.path, exc_info=True)
        return []


def _methods(result, library) -> list[str]:
    if library is None:
        return []
    try:
        return methods_for(library, result)
    except Exception:  # the relevance map is a bonus: the preview shows without it
        log.warning("no relevance methods for %s", result.path, exc_info=True)
        return []


def _control(player: QObject, slot: str, position_ms: int | None = None) -> None:
    """Call QMediaPlayer's `slot` (play, pause, stop, setPosition) with the GIL released.

    A plain `player.stop()` holds the GIL while Qt's FFmpeg backend tears down its
    renderers, which can mean waiting for a lock held by a renderer thread that is
    itself waiting for the GIL (to ask our Python-made QAudioOutput whether Python
    overrides disconnectNotify): a deadlock, seen in CI. QMetaObject.invokeMethod runs
    the same slot at once, on this thread, with the GIL released.
    """
    args = () if position_ms is None else (Q_ARG("qint64", position_ms),)
    if not QMetaObject.invokeMethod(player, slot, Qt.ConnectionType.DirectConnection, *args):
        raise RuntimeError(f"QMediaPlayer has no slot {slot}")


def _to_qimage(picture) -> QImage:
    return to_qimage(np.asarray(picture.convert("RGB")), QImage.Format.Format_RGB888)


# ---------------------------------------------------------------------------- the pane


def _describe(result: SearchResult) -> str:
    parts = [result.modality]
    if result.start is not None:
        parts.append(moment_text(result.start, result.end))
    elif result.char_start is not None and result.char_end is not None:
        parts.append(f"characters {result.char_start:,}–{result.char_end:,}")
    if result.space:  # items shown without a search have no similarity
        parts.append(f"similarity {result.similarity:.2f} ({result.space})")
    return "  ·  ".join(parts)


class PreviewPane(QWidget):
    """Shows one SearchResult; `find_similar` asks to search with it as the query."""

    find_similar = Signal(object)  # the SearchResult shown

    LOADING_DELAY_MS = 200  # a quick load never flashes "Loading…"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._library: object | None = None
        self._result: SearchResult | None = None
        self._vectors: Mapping[str, np.ndarray] | None = None
        self._query: SearchQuery | None = None
        self._text_offset = 0  # where the text shown starts in the file's text
        self._frame_time: float | None = None  # the video frame explained
        self._view = "empty"
        self._player: QObject | None = None
        self._pending_seek: int | None = None  # ms, applied once the media has loaded
        self._slot = TaskSlot(self)
        self._slot.result.connect(self._on_loaded)
        self._slot.failed.connect(self._on_failed)
        self._loading_timer = QTimer(self, singleShot=True, interval=self.LOADING_DELAY_MS)
        self._loading_timer.timeout.connect(
            lambda: self._loading.setText(f"Loading {Path(self._result.path).name}…")
            if self._result else None)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(self._build_header())
        self.relevance = RelevanceBar()
        self.relevance.rendered.connect(self._draw_relevance)
        self.relevance.cleared.connect(self._clear_relevance)
        self.relevance.opacity_changed.connect(self._set_overlay_opacity)
        layout.addWidget(self.relevance)
        self._stack = QStackedWidget()
        self._pages: dict[str, QWidget] = {}
        self._build_pages()
        layout.addWidget(self._stack, 1)
        # under the page, for audio and for a video explained by its sound
        self.spectrogram = SpectrogramView()
        self.spectrogram.setMaximumHeight(220)
        self.spectrogram.hide()
        layout.addWidget(self.spectrogram)
        layout.addWidget(self._build_transport())
        self._set_overlay_opacity(self.relevance.opacity)
        self._show("empty")

    # -- public --------------------------------------------------------------------------

    @property
    def current_view(self) -> str:
        """Which page is shown: one of VIEWS."""
        return self._view

    @property
    def result(self) -> SearchResult | None:
        return self._result

    @property
    def player(self) -> QObject | None:
        """The QMediaPlayer shared by audio and video (made on first use); None without
        QtMultimedia."""
        if self._player is None and self._video_item is not None:
            mm = multimedia().classes
            self._player = mm.QMediaPlayer(self)
            self._player.setAudioOutput(mm.QAudioOutput(self._player))
            self._player.setVideoOutput(self._video_item)
            self._player.mediaStatusChanged.connect(self._on_media_status)
            self._player.positionChanged.connect(self._on_position)
            self._player.durationChanged.connect(self._on_duration)
            self._player.playbackStateChanged.connect(self._on_playback_state)
            self._player.errorOccurred.connect(self._on_player_error)
        return self._player

    def set_library(self, library: object | None) -> None:
        """Follow another library (None: closing it): stop and clear everything.

        Waits for a running load or explanation, which may be reading this library.
        """
        self._slot.shutdown()
        self.relevance.set_library(library)
        self._library = library
        self.show_result(None)

    def show_result(self, result: SearchResult | None,
                    vectors: Mapping[str, np.ndarray] | None = None,
                    query: SearchQuery | None = None) -> None:
        """Show `result` (None: nothing); `vectors` are the query's {space: vector}.

        With the `query` too, the relevance bar explains why the result matched it.
        Showing the result already shown, for the same query, changes nothing (playback
        goes on).
        """
        if result is not None and result == self._result and vectors is self._vectors \
                and query == self._query and self._view not in ("error", "empty"):
            return
        self._vectors, self._query = vectors, query
        self._stop_media()
        self._result = result
        self.relevance.set_subject(result, query, vectors)
        self._find.setEnabled(result is not None)
        self._loading_timer.stop()
        if result is None:
            self._slot.cancel()
            self._set_header("", "")
            self._show("empty")
            return
        self._set_header(Path(result.path).name, _describe(result), result.path)
        self._loading.setText("")
        self._show("loading")
        self._loading_timer.start()
        self._slot.start(load_preview, result, self._library, dict(vectors) if vectors else None,
                         query is not None)

    def toggle_playback(self) -> None:
        """Play or pause the audio or video shown (Space); from the moment after its end."""
        player = self._player
        if player is None or self._view not in ("video", "audio") or player.source().isEmpty():
            return
        states = type(player).PlaybackState
        if player.playbackState() == states.PlayingState:
            _control(player, "pause")
            return
        if player.mediaStatus() == type(player).MediaStatus.EndOfMedia:
            _control(player, "setPosition", self._moment_ms())
        _control(player, "play")

    def shutdown(self) -> None:
        """Cancel the load and the explanation, and stop playback (the window is closing)."""
        self._loading_timer.stop()
        self._slot.shutdown()
        self.relevance.shutdown()
        self._stop_media()

    # -- building ------------------------------------------------------------------------

    def _build_header(self) -> QHBoxLayout:
        self._title = QLabel()
        self._title.setTextFormat(Qt.TextFormat.PlainText)
        font = self._title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.1)
        self._title.setFont(font)
        self._details = QLabel()
        self._details.setTextFormat(Qt.TextFormat.PlainText)
        self._details.setEnabled(False)  # the palette's secondary text colour
        for label in (self._title, self._details):
            # a long file name must not widen the pane
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._find = QPushButton("Find similar")
        self._find.setToolTip("Search with this item as the query (Ctrl+Enter)")
        self._find.setEnabled(False)
        self._find.clicked.connect(lambda: self._result and self.find_similar.emit(self._result))
        texts = QVBoxLayout()
        texts.setSpacing(0)
        texts.addWidget(self._title)
        texts.addWidget(self._details)
        header = QHBoxLayout()
        header.addLayout(texts, 1)
        header.addWidget(self._find, 0, Qt.AlignmentFlag.AlignVCenter)
        return header

    def _build_pages(self) -> None:
        def message_label() -> QLabel:
            label = QLabel()
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setWordWrap(True)
            label.setTextFormat(Qt.TextFormat.PlainText)
            return label

        empty = message_label()
        empty.setText("Select a result to preview it here.")
        empty.setEnabled(False)
        self._loading = message_label()
        self._loading.setEnabled(False)
        error_page = QWidget()
        icon = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        icon.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
                       .pixmap(48, 48))
        self._error_title, self._error = message_label(), message_label()
        bold = self._error_title.font()
        bold.setBold(True)
        self._error_title.setFont(bold)
        column = QVBoxLayout(error_page)
        column.addStretch(1)
        for w in (icon, self._error_title, self._error):
            column.addWidget(w)
        column.addStretch(2)

        # image: zoom around the cursor, drag to pan, double-click or Fit to fit
        self.image_view = ZoomView()
        self._pixmap_item = QGraphicsPixmapItem()
        self._pixmap_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.image_overlay = HeatmapOverlay(self._pixmap_item)
        scene = QGraphicsScene(self.image_view)
        scene.addItem(self._pixmap_item)
        scene.addItem(self.image_overlay)
        self.image_view.setScene(scene)
        fit, actual = QToolButton(text="Fit"), QToolButton(text="100 %")
        fit.setToolTip("Fit the picture to the pane (double-click)")
        fit.clicked.connect(self.image_view.fit)
        actual.clicked.connect(self.image_view.actual_size)
        self._image_info = QLabel()
        self._image_info.setEnabled(False)
        self.image_view.zoom_changed.connect(self._on_zoom)
        tools = QHBoxLayout()
        tools.setContentsMargins(0, 0, 0, 0)
        for w in (fit, actual, self._image_info):
            tools.addWidget(w)
        tools.addStretch(1)
        image_page = QWidget()
        column = QVBoxLayout(image_page)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.image_view, 1)
        column.addLayout(tools)

        # video: the frame (zoomable too), and the query's similarity along the video
        mm = multimedia()
        self._video_item = mm.classes.QGraphicsVideoItem() if mm.classes else None
        self.video_view = ZoomView(upscale=True)
        self.video_view.setScene(QGraphicsScene(self.video_view))
        self.video_overlay: HeatmapOverlay | None = None
        if self._video_item is not None:
            self.video_overlay = HeatmapOverlay(self._video_item)
            self.video_view.scene().addItem(self._video_item)
            self.video_view.scene().addItem(self.video_overlay)
            self._video_item.nativeSizeChanged.connect(self._on_video_size)
        self.strip = Timeline(minimum_height=48)
        self.strip.setMaximumHeight(64)
        self.strip.setToolTip("The query's similarity along the video; click to go there")
        video_page = QWidget()
        column = QVBoxLayout(video_page)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.video_view if mm.classes else self._unavailable(mm.error), 1)
        column.addWidget(self.strip)

        # audio: waveform with the matched window shaded, the similarity curve over it
        self.waveform = Timeline(minimum_height=120)
        self.waveform.setMaximumHeight(260)
        audio_page = QWidget()
        column = QVBoxLayout(audio_page)
        column.setContentsMargins(0, 0, 0, 0)
        self.waveform.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        column.addStretch(1)
        column.addWidget(self.waveform, 4)
        if not mm.classes:
            column.addWidget(self._unavailable(mm.error))
        column.addStretch(1)
        for timeline in (self.strip, self.waveform):
            timeline.seek_requested.connect(self._seek)

        self.text_view = MatchTextView()
        self._text_note = QLabel()
        self._text_note.setEnabled(False)
        text_page = QWidget()
        column = QVBoxLayout(text_page)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.text_view, 1)
        column.addWidget(self._text_note)

        for name, page in (("empty", empty), ("loading", self._loading), ("image", image_page),
                           ("video", video_page), ("audio", audio_page), ("text", text_page),
                           ("error", error_page)):
            self._pages[name] = page
            self._stack.addWidget(page)

    @staticmethod
    def _unavailable(reason: str | None) -> QLabel:
        label = QLabel(reason or "Playback is not available.")
        label.setWordWrap(True)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        return label

    def _build_transport(self) -> QWidget:
        style = self.style()
        self._play = QToolButton()
        self._play.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self._play.setToolTip("Play / pause (Space)")
        self._play.clicked.connect(self.toggle_playback)
        back = QToolButton()
        back.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaSkipBackward))
        back.setToolTip("Back to the matched moment")
        back.clicked.connect(lambda: self._seek(self._moment_ms() / 1000))
        self._time = QLabel(clock(None))
        self._transport = QWidget()
        row = QHBoxLayout(self._transport)
        row.setContentsMargins(0, 2, 0, 0)
        for w in (self._play, back, self._time):
            row.addWidget(w)
        row.addStretch(1)
        return self._transport

    # -- showing -------------------------------------------------------------------------

    def _show(self, name: str) -> None:
        self._view = name
        self._stack.setCurrentWidget(self._pages[name])
        self._transport.setVisible(name in ("video", "audio") and self._video_item is not None)

    def _set_header(self, title: str, details: str, tooltip: str = "") -> None:
        self._title.setText(title)
        self._title.setToolTip(tooltip)
        self._details.setText(details)

    def _show_error(self, message: str) -> None:
        self._stop_media()
        self._loading_timer.stop()
        name = Path(self._result.path).name if self._result else "this file"
        self._error_title.setText(f"Cannot preview {name}")
        self._error.setText(message)
        self._find.setEnabled(False)  # a file that cannot be read cannot be a query either
        self.relevance.set_subject(None)
        self._show("error")

    def _on_failed(self, message: str) -> None:
        self._show_error(message)

    def _on_loaded(self, loaded: Loaded) -> None:
        if loaded.result is not self._result:
            return  # a load that finished as the selection moved on
        self._loading_timer.stop()
        result = loaded.result
        if loaded.image is not None:
            self._pixmap_item.setPixmap(QPixmap.fromImage(loaded.image))
            self.image_view.setSceneRect(self._pixmap_item.boundingRect())
            self._show("image")
            self.image_view.fit()
        elif loaded.text is not None:
            preview = loaded.text
            self._text_note.setVisible(preview.truncated)
            self._text_note.setText(
                f"A long text: showing characters {preview.offset:,}–"
                f"{preview.offset + len(preview.text):,} of {preview.total:,}.")
            self._show("text")
            self._text_offset = preview.offset
            self.text_view.show_text(preview.text, preview.span(result.char_start, result.char_end))
        else:
            timeline = self.strip if result.modality == "video" else self.waveform
            timeline.clear()
            timeline.set_waveform(loaded.waveform)
            timeline.set_curve(loaded.curve)
            timeline.set_moment(result.start, result.end)
            timeline.set_position(result.start or 0.0)
            timeline.placeholder = loaded.note
            self._show(result.modality)
            self._open_media(result)
        self.relevance.set_methods(loaded.methods)

    def _open_media(self, result: SearchResult) -> None:
        player = self.player
        if player is None:
            return
        # Opened paused at the moment: setPosition once the media has loaded (seeking
        # a loading source is ignored), then pause() so the frame there is shown.
        self._pending_seek = self._moment_ms()
        self._time.setText(f"{clock(result.start)} / {clock(None)}")
        player.setSource(QUrl.fromLocalFile(str(Path(result.path).absolute())))

    def _moment_ms(self) -> int:
        start = self._result.start if self._result is not None else None
        return int(round((start or 0.0) * 1000))

    def _stop_media(self) -> None:
        self._pending_seek = None
        if self._player is not None and not self._player.source().isEmpty():
            _control(self._player, "stop")
            self._player.setSource(QUrl())  # releases the file (PySide releases the GIL)

    # -- player --------------------------------------------------------------------------

    def _on_media_status(self, status) -> None:
        statuses = type(self._player).MediaStatus
        if status == statuses.LoadedMedia and self._pending_seek is not None:
            position, self._pending_seek = self._pending_seek, None
            _control(self._player, "setPosition", position)
            _control(self._player, "pause")
        elif status == statuses.InvalidMedia and self._view in ("video", "audio"):
            self._show_error(f"cannot play it: {self._player.errorString() or 'unsupported media'}")

    def _on_player_error(self, error, message: str) -> None:
        if error != type(self._player).Error.NoError and self._view in ("video", "audio"):
            log.warning("player error on %s: %s", self._result and self._result.path, message)
            self._show_error(f"cannot play it: {message}")

    def _on_position(self, ms: int) -> None:
        (self.strip if self._view == "video" else self.waveform).set_position(ms / 1000)
        self._follow_frame(ms / 1000)
        self._update_time()

    def _on_duration(self, ms: int) -> None:
        self.strip.set_duration(ms / 1000)
        self._update_time()

    def _update_time(self) -> None:
        duration = self._player.duration()
        self._time.setText(f"{clock(self._player.position() / 1000)} / "
                           f"{clock(duration / 1000 if duration > 0 else None)}")

    def _on_playback_state(self, state) -> None:
        playing = state == type(self._player).PlaybackState.PlayingState
        icon = QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        self._play.setIcon(self.style().standardIcon(icon))

    def _seek(self, seconds: float, *, pause: bool = False) -> None:
        if self._player is None or self._player.source().isEmpty():
            return
        if self._pending_seek is not None:
            self._pending_seek = int(seconds * 1000)  # still loading: go there once loaded
        else:
            _control(self._player, "setPosition", int(seconds * 1000))
            if pause:
                _control(self._player, "pause")

    def _on_video_size(self, size) -> None:
        if not size.isEmpty():
            self._video_item.setSize(size)
            self.video_overlay.align()
            self.video_view.setSceneRect(self._video_item.boundingRect())
            self.video_view.fit()

    # -- relevance -----------------------------------------------------------------------

    def _draw_relevance(self, rendered: Rendered) -> None:
        """Lay the shown result's explanation over its view (the bar sends no stale one)."""
        explanation = rendered.explanation
        if explanation.spectrogram is not None and rendered.spectrogram is not None:
            if self._view in ("audio", "video"):
                self.spectrogram.show_spectrogram(rendered.spectrogram, rendered.overlay,
                                                  explanation.window)
                self.spectrogram.show()
        elif self._view == "image":
            self.image_overlay.set_image(rendered.overlay)
            self.image_overlay.setVisible(rendered.overlay is not None)
        elif self._view == "video" and explanation.frame_time is not None \
                and self.video_overlay is not None:
            self.video_overlay.set_image(rendered.overlay)
            self._frame_time = explanation.frame_time
            self._seek(explanation.frame_time, pause=True)  # the frame the map is about
            self._follow_frame(self._player.position() / 1000 if self._player else 0.0)
        elif self._view == "text" and explanation.tokens:
            offset = self._text_offset
            self.text_view.shade([(t.start - offset, t.end - offset, token_colour(t.weight))
                                  for t in explanation.tokens])
        timeline = {"video": self.strip, "audio": self.waveform}.get(self._view)
        if timeline is not None and explanation.curve and not timeline.curve:
            timeline.set_curve(explanation.curve)

    def _clear_relevance(self) -> None:
        self._frame_time = None
        for overlay in (self.image_overlay, self.video_overlay):
            if overlay is not None:
                overlay.set_image(None)
                overlay.hide()
        self.spectrogram.hide()
        self.text_view.shade([])

    def _set_overlay_opacity(self, opacity: float) -> None:
        for overlay in (self.image_overlay, self.video_overlay, self.spectrogram.overlay):
            if overlay is not None:
                overlay.setOpacity(opacity)

    def _follow_frame(self, seconds: float) -> None:
        """An explained frame's map shows only while that frame is on screen."""
        if self.video_overlay is not None:
            self.video_overlay.setVisible(
                self._frame_time is not None and not self.video_overlay.pixmap().isNull()
                and abs(seconds - self._frame_time) <= FRAME_TOLERANCE)

    def _on_zoom(self, scale: float) -> None:
        image = self._pixmap_item.pixmap()
        self._image_info.setText(f"{image.width()} × {image.height()} px  ·  {scale * 100:.0f} %")

"""The preview pane's widgets: a zoomable picture view, relevance overlays, a
spectrogram, a timeline strip, matched text.

QtMultimedia is imported in one place, `multimedia()`: it needs system libraries
(PulseAudio, FFmpeg's) that a machine may lack, and the pane must still show
pictures and text there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from types import SimpleNamespace

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
    QResizeEvent,
    QTextCharFormat,
    QTextCursor,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QTextBrowser,
    QTextEdit,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from mmstudio.core.preview import CurvePoint, Waveform
from mmstudio.gui.style import clock

log = logging.getLogger(__name__)



def to_qimage(pixels: np.ndarray, fmt: QImage.Format) -> QImage:
    """A QImage owning a copy of (H, W[, C]) uint8 pixels (safe to build off the GUI
    thread)."""
    pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    return QImage(pixels.data, width, height, pixels.strides[0], fmt).copy()

@dataclass(frozen=True)
class Multimedia:
    """QtMultimedia's classes, or why they could not be loaded."""

    classes: SimpleNamespace | None
    error: str | None


@cache
def multimedia() -> Multimedia:
    """QtMultimedia if it loads here (once per process), else the reason it does not."""
    try:
        from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer
        from PySide6.QtMultimediaWidgets import QGraphicsVideoItem
    except ImportError as exc:  # e.g. libpulse.so.0 missing: pictures and text still work
        log.warning("audio and video playback unavailable: %s", exc)
        return Multimedia(None, f"Audio and video playback is not available on this system ({exc}).")
    return Multimedia(SimpleNamespace(QMediaPlayer=QMediaPlayer, QAudioOutput=QAudioOutput,
                                      QGraphicsVideoItem=QGraphicsVideoItem), None)


class ZoomView(QGraphicsView):
    """A graphics view that wheel-zooms around the cursor, pans by dragging and fits.

    It stays fitted to the window while it is in "fit" mode (after loading, after
    `fit()` or a double-click); zooming leaves fit mode.
    """

    zoom_changed = Signal(float)  # the scale: 1.0 = one image pixel per screen pixel

    MIN_SCALE, MAX_SCALE = 0.02, 32.0
    WHEEL_STEP = 1.0015  # per wheel angle unit: one notch (120) zooms by about 20 %

    def __init__(self, parent: QWidget | None = None, *, upscale: bool = False) -> None:
        super().__init__(parent)
        # Fitting blows small content up only when asked (a video); a small picture
        # is shown at its own size, not smeared across the pane.
        self._upscale = upscale
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setRenderHints(QPainter.RenderHint.SmoothPixmapTransform | QPainter.RenderHint.Antialiasing)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setBackgroundBrush(QColor(38, 38, 40))  # neutral dark: pictures read best on it
        self._fitting = True

    @property
    def scale_factor(self) -> float:
        return float(self.transform().m11())

    @property
    def fitting(self) -> bool:
        return self._fitting

    def fit(self) -> None:
        self._fitting = True
        rect = self.scene().itemsBoundingRect() if self.scene() else QRectF()
        if rect.isEmpty():
            return
        self.setSceneRect(rect)
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if self.scale_factor > 1.0 and not self._upscale:
            self.resetTransform()
        self.zoom_changed.emit(self.scale_factor)

    def actual_size(self) -> None:
        self._fitting = False
        self.resetTransform()
        self.zoom_changed.emit(1.0)

    def zoom_by(self, factor: float) -> None:
        current = self.scale_factor
        target = min(self.MAX_SCALE, max(self.MIN_SCALE, current * factor))
        if current > 0 and target != current:
            self._fitting = False
            self.scale(target / current, target / current)
            self.zoom_changed.emit(self.scale_factor)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt's name)
        delta = event.angleDelta().y()
        if delta:
            self.zoom_by(self.WHEEL_STEP**delta)
            event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self.fit()
        event.accept()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._fitting:
            self.fit()


class HeatmapOverlay(QGraphicsPixmapItem):
    """A relevance map laid over another item of the same scene, stretched to its bounds.

    The map has its own resolution (the file's pixels, a frame's, a spectrogram's), not
    the one of the item under it (a downscaled preview, a video surface): stretching it
    onto that item's scene rectangle keeps the two aligned through zoom and pan. Mouse
    presses pass through, so dragging still pans the view.
    """

    def __init__(self, under: QGraphicsItem) -> None:
        super().__init__()
        self._under = under
        self.setZValue(under.zValue() + 1)
        self.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setVisible(False)

    def set_image(self, image: QImage | None) -> None:
        """Show `image` (None: nothing) over the item under it."""
        self.setPixmap(QPixmap() if image is None else QPixmap.fromImage(image))
        self.align()

    def align(self) -> None:
        """Stretch the map over the item under it again (after that item changed size)."""
        pixmap = self.pixmap()
        target = self._under.mapRectToScene(self._under.boundingRect())
        if pixmap.isNull() or target.isEmpty():
            return
        self.setPos(target.topLeft())
        self.setTransform(QTransform.fromScale(target.width() / pixmap.width(),
                                               target.height() / pixmap.height()))


class SpectrogramView(QWidget):
    """A stretch of sound as a spectrogram (low frequencies at the bottom) with a relevance
    map over it, and the times it spans."""

    # width / height shown: a few seconds of 64 mel bands read as a strip, not a square
    ASPECT = 3.0

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = ZoomView(upscale=True)
        self.view.setScene(QGraphicsScene(self.view))
        self.view.setMinimumHeight(90)
        self.picture = QGraphicsPixmapItem()
        self.picture.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.overlay = HeatmapOverlay(self.picture)
        self.view.scene().addItem(self.picture)
        self.view.scene().addItem(self.overlay)
        self.start_label, self.end_label = QLabel(), QLabel()
        caption = QLabel("spectrogram · low frequencies at the bottom")
        for label in (self.start_label, caption, self.end_label):
            label.setEnabled(False)  # secondary text
        caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        times = QHBoxLayout()
        times.setContentsMargins(0, 0, 0, 0)
        times.addWidget(self.start_label)
        times.addWidget(caption, 1)
        times.addWidget(self.end_label)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 4, 0, 0)
        column.setSpacing(2)
        column.addWidget(self.view, 1)
        column.addLayout(times)

    def show_spectrogram(self, spectrogram: QImage, overlay: QImage | None,
                         window: tuple[float, float] | None) -> None:
        """spectrogram: already flipped (low bands in its last row), like `overlay`."""
        self.picture.setPixmap(QPixmap.fromImage(spectrogram))
        width, height = max(spectrogram.width(), 1), max(spectrogram.height(), 1)
        self.picture.setTransform(QTransform.fromScale(1.0, width / self.ASPECT / height))
        self.overlay.set_image(overlay)
        self.overlay.setVisible(overlay is not None)
        self.start_label.setText(_seconds_text(window[0]) if window else "")
        self.end_label.setText(_seconds_text(window[1]) if window else "")
        self.view.fit()


def _seconds_text(seconds: float) -> str:
    """01:02.5: a window of sound is often shorter than a second's resolution shows."""
    minutes, rest = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes):02d}:{rest:04.1f}"


class Timeline(QWidget):
    """A strip across a whole recording: waveform and/or similarity curve, the matched
    moment, and a playhead. Clicking or dragging asks to seek there."""

    seek_requested = Signal(float)  # seconds

    CURVE = QColor(230, 126, 34)  # the query's similarity: warm, over the cool waveform
    WAVE = QColor(74, 118, 184)
    MOMENT = QColor(255, 196, 0, 70)
    MOMENT_EDGE = QColor(214, 150, 0)
    PLAYHEAD = QColor(214, 48, 39)
    # Similarities closer than this are drawn as flat: noise is not blown up to full height.
    MIN_RANGE = 0.05

    def __init__(self, parent: QWidget | None = None, *, minimum_height: int = 44) -> None:
        super().__init__(parent)
        self.setMinimumHeight(minimum_height)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMouseTracking(True)  # hover tooltips
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self._duration = 0.0
        self._waveform: Waveform | None = None
        self._curve: list[CurvePoint] = []
        self._moment: tuple[float, float] | None = None
        self._position = 0.0
        self.placeholder = ""  # said when there is nothing to draw

    # -- data -------------------------------------------------------------------------

    def clear(self) -> None:
        self._duration, self._waveform, self._curve, self._moment = 0.0, None, [], None
        self._position = 0.0
        self.update()

    @property
    def duration(self) -> float:
        return self._duration

    @property
    def curve(self) -> list[CurvePoint]:
        return list(self._curve)

    @property
    def waveform(self) -> Waveform | None:
        return self._waveform

    @property
    def position(self) -> float:
        return self._position

    def set_duration(self, seconds: float) -> None:
        if seconds > 0 and abs(seconds - self._duration) > 1e-3:
            self._duration = seconds
            self.update()

    def set_waveform(self, waveform: Waveform | None) -> None:
        self._waveform = waveform
        if waveform is not None and self._duration <= 0:
            self._duration = waveform.duration
        self.update()

    def set_curve(self, curve: Sequence[CurvePoint]) -> None:
        self._curve = list(curve)
        if self._curve and self._duration <= 0:
            self._duration = max(p.end for p in self._curve)
        self.update()

    def set_moment(self, start: float | None, end: float | None) -> None:
        self._moment = None if start is None else (start, end if end is not None else start)
        self.update()

    def set_position(self, seconds: float) -> None:
        if abs(seconds - self._position) > 1e-4:
            self._position = seconds
            self.update()

    # -- geometry ------------------------------------------------------------------------

    def _x(self, seconds: float) -> float:
        return 0.0 if self._duration <= 0 else seconds / self._duration * self.width()

    def seconds_at(self, x: float) -> float:
        if self._duration <= 0 or self.width() <= 0:
            return 0.0
        return min(self._duration, max(0.0, x / self.width() * self._duration))

    def similarity_at(self, seconds: float) -> float | None:
        if not self._curve:
            return None
        nearest = min(self._curve, key=lambda p: abs(p.middle - seconds))
        return nearest.similarity

    # -- events ---------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt's name)
        if event.button() == Qt.MouseButton.LeftButton and self._duration > 0:
            self.seek_requested.emit(self.seconds_at(event.position().x()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._duration <= 0:
            return
        seconds = self.seconds_at(event.position().x())
        if event.buttons() & Qt.MouseButton.LeftButton:  # scrubbing
            self.seek_requested.emit(seconds)
        similarity = self.similarity_at(seconds)
        tip = clock(seconds) + (f" · similarity {similarity:.2f}" if similarity is not None else "")
        QToolTip.showText(event.globalPosition().toPoint(), tip, self)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        palette = self.palette()
        p.setPen(QPen(palette.color(QPalette.ColorRole.Mid), 1))
        p.setBrush(palette.color(QPalette.ColorRole.Base))
        p.drawRoundedRect(rect, 4, 4)
        if self._duration <= 0:
            if self.placeholder:
                p.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
                p.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        p.setClipRect(rect.adjusted(1, 1, -1, -1))
        self._paint_moment(p, rect)
        if self._waveform is not None:
            self._paint_waveform(p, rect)
        if self._curve:
            self._paint_curve(p, rect)
        elif self.placeholder:
            p.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(rect.adjusted(6, 2, -6, -2),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, self.placeholder)
        self._paint_playhead(p, rect)

    # -- painting ---------------------------------------------------------------------------

    def _paint_moment(self, p: QPainter, rect: QRectF) -> None:
        if self._moment is None:
            return
        x0, x1 = self._x(self._moment[0]), self._x(self._moment[1])
        if x1 - x0 < 3:  # a frame: a narrow band so it stays visible
            x0, x1 = x0 - 1.5, x0 + 1.5
        p.fillRect(QRectF(x0, rect.top(), x1 - x0, rect.height()), self.MOMENT)
        p.setPen(QPen(self.MOMENT_EDGE, 1.5))
        p.drawLine(QPointF(x0, rect.top()), QPointF(x0, rect.bottom()))
        mark = QPainterPath(QPointF(x0 - 5, rect.bottom()))  # a notch that outlives the playhead
        mark.lineTo(x0 + 5, rect.bottom())
        mark.lineTo(x0, rect.bottom() - 6)
        mark.closeSubpath()
        p.fillPath(mark, self.MOMENT_EDGE)

    def _paint_waveform(self, p: QPainter, rect: QRectF) -> None:
        peaks = self._waveform.peaks
        if peaks.size == 0:
            return
        middle, half = rect.center().y(), rect.height() / 2 - 3
        # Scaled to the file's own peak so quiet recordings still show their shape.
        scale = half / max(float(np.abs(peaks).max()), 0.05)
        span = self._waveform.duration / self._duration if self._duration > 0 else 1.0
        width = rect.width() * min(1.0, span)
        columns = max(1, min(int(width), peaks.shape[0]))
        # A min/max envelope per pixel column, drawn as one filled outline: a pure tone
        # stays a solid band instead of a comb of lines.
        edges = np.unique((np.arange(columns) * peaks.shape[0]) // columns)
        highs = np.maximum.reduceat(peaks[:, 1], edges) * scale
        lows = np.minimum.reduceat(peaks[:, 0], edges) * scale
        xs = rect.left() + (np.arange(len(edges)) + 0.5) * (width / len(edges))
        outline = QPainterPath(QPointF(xs[0], middle - highs[0]))
        for x, hi in zip(xs[1:], highs[1:], strict=True):
            outline.lineTo(x, middle - hi)
        for x, lo in zip(xs[::-1], lows[::-1], strict=True):
            outline.lineTo(x, middle - lo + 0.5)  # never thinner than a line: silence shows
        outline.closeSubpath()
        p.setPen(QPen(self.WAVE, 1))
        p.setBrush(self.WAVE)
        p.drawPath(outline)

    def _paint_curve(self, p: QPainter, rect: QRectF) -> None:
        sims = np.array([c.similarity for c in self._curve], dtype=np.float64)
        lo, hi = float(sims.min()), float(sims.max())
        if hi - lo < self.MIN_RANGE:
            lo = hi - self.MIN_RANGE
        top, bottom = rect.top() + 4, rect.bottom() - 2

        def y(similarity: float) -> float:
            return bottom - (similarity - lo) / (hi - lo) * (bottom - top)

        # A frame stands for the time until the next one, a window for its whole span:
        # hold the first and last values out to the ends of the recording.
        xs = [rect.left(), *(self._x(c.middle) for c in self._curve), rect.right()]
        sims = np.concatenate([sims[:1], sims, sims[-1:]])
        line = QPainterPath(QPointF(xs[0], y(sims[0])))
        for x, s in zip(xs[1:], sims[1:], strict=True):
            line.lineTo(x, y(s))
        area = QPainterPath(line)
        area.lineTo(xs[-1], bottom)
        area.lineTo(xs[0], bottom)
        area.closeSubpath()
        fill = QColor(self.CURVE)
        fill.setAlpha(60 if self._waveform is None else 40)
        p.fillPath(area, fill)
        p.setPen(QPen(self.CURVE, 1.6))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(line)

    def _paint_playhead(self, p: QPainter, rect: QRectF) -> None:
        x = self._x(min(self._position, self._duration))
        p.setPen(QPen(self.PLAYHEAD, 2))
        p.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
        head = QPainterPath(QPointF(x - 5, rect.top()))
        head.lineTo(x + 5, rect.top())
        head.lineTo(x, rect.top() + 6)
        head.closeSubpath()
        p.fillPath(head, self.PLAYHEAD)


class MatchTextView(QTextBrowser):
    """Read-only text with one span highlighted and scrolled into view, and optionally
    spans tinted (a relevance map over the words)."""

    HIGHLIGHT = QColor(255, 221, 120)
    MATCH_LINE = QColor(214, 150, 0)  # the match, underlined while tints show the words

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setUndoRedoEnabled(False)
        self.document().setDocumentMargin(12)
        self._text = ""
        self._span: tuple[int, int] | None = None  # document positions of the match
        self._shaded = False

    @property
    def match_span(self) -> tuple[int, int] | None:
        """The highlighted span as document positions (QTextCursor), if any."""
        return self._span

    def show_text(self, text: str, span: tuple[int, int] | None) -> None:
        """Show `text`; `span` is (start, end) as indices into the Python string."""
        self.setPlainText(text)  # drops the tints too
        self._text, self._span, self._shaded = text, None, False
        if span is not None:
            positions = _document_positions(text, span)
            self._span = (positions[span[0]], positions[span[1]])
        self._mark_match()
        # Scroll once the text is laid out at the widget's size.
        QTimer.singleShot(0, self.scroll_to_match)

    def shade(self, spans: Sequence[tuple[int, int, QColor]]) -> None:
        """Tint (start, end) spans of the text (Python string indices) with their colours;
        [] takes the tints away.

        The tints are the document's own character formats, so the match highlight (an
        extra selection, painted over them) turns into an underline while they show.
        """
        if not spans and not self._shaded:
            return
        cursor = QTextCursor(self.document())
        if self._shaded:
            cursor.select(QTextCursor.SelectionType.Document)
            cursor.setCharFormat(QTextCharFormat())
        length = len(self._text)
        spans = [(max(0, a), min(length, b), c) for a, b, c in spans if min(length, b) > max(0, a)]
        positions = _document_positions(self._text, (i for a, b, _ in spans for i in (a, b)))
        for start, end, colour in spans:
            tint = QTextCharFormat()
            tint.setBackground(colour)
            cursor.setPosition(positions[start])
            cursor.setPosition(positions[end], QTextCursor.MoveMode.KeepAnchor)
            cursor.mergeCharFormat(tint)
        self._shaded = bool(spans)
        self._mark_match()

    def _mark_match(self) -> None:
        if self._span is None:
            self.setExtraSelections([])
            return
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._span[0])
        cursor.setPosition(self._span[1], QTextCursor.MoveMode.KeepAnchor)
        fmt = QTextCharFormat()
        if self._shaded:
            fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.SingleUnderline)
            fmt.setUnderlineColor(self.MATCH_LINE)
        else:
            fmt.setBackground(self.HIGHLIGHT)
            fmt.setForeground(QColor(20, 20, 20))  # readable on the highlight in a dark theme too
        selection = QTextEdit.ExtraSelection()
        selection.format = fmt
        selection.cursor = cursor
        self.setExtraSelections([selection])

    def scroll_to_match(self) -> None:
        if self._span is None:
            return
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._span[0])
        self.setTextCursor(cursor)  # where keyboard navigation starts
        top = self.cursorRect(cursor).top()
        bar = self.verticalScrollBar()
        bar.setValue(bar.value() + top - self.viewport().height() // 4)


def _document_positions(text: str, indices: Iterable[int]) -> dict[int, int]:
    """Python string indices as QTextDocument positions.

    Qt counts UTF-16 units (an emoji is two) and makes each "\\r\\n" one paragraph
    break, so offsets from the catalog need mapping. The text is walked once for all the
    indices: a relevance map has hundreds of words in a text of millions of characters.
    """
    positions: dict[int, int] = {}
    done = units = pairs = 0
    for index in sorted(set(indices)):
        piece = text[done:index]
        units += len(piece.encode("utf-16-le")) // 2
        # a "\r\n" cut at the previous index was in neither piece
        pairs += piece.count("\r\n") + (0 < done < index and text[done - 1:done + 1] == "\r\n")
        positions[index] = units - pairs
        done = index
    return positions

"""The preview pane's "why did it match?" bar: relevance maps on demand.

The bar is the explanation's panel: it owns the task slot and the cache. A method is
explained by a core job (`explain_and_render`, which also colours the map off the GUI
thread); a new subject (result or query) cancels the stale job, and a new colour map
only re-colours the explanation in hand (`render`), never computes it again. The pane
draws what `rendered` delivers over its own views: it alone knows where the picture,
the frame, the spectrogram or the text is.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from mmstudio.core.jobs import CancelToken, Progress, ProgressCallback, no_progress
from mmstudio.core.preview import IMAGE_MAX_SIDE
from mmstudio.core.search import SearchQuery, SearchResult
from mmstudio.explain import (
    COLORMAPS,
    METHOD_LABELS,
    ExplainCache,
    Explanation,
    TokenScore,
    cache_key,
    colorize,
    explain,
    spectrogram_picture,
)
from mmstudio.gui.views.media_widgets import to_qimage
from mmstudio.gui.workers import TaskSlot

WARM, COOL = QColor(231, 96, 40), QColor(52, 120, 219)  # words that raise / lower the match
ERROR = QColor(192, 57, 43)
MAX_TINT = 0.65  # the most opaque a word's tint gets: the word must stay readable


# ---------------------------------------------------------------------------- the jobs


@dataclass(frozen=True)
class Rendered:
    """An explanation ready to draw (QImages are safe to build off the GUI thread).

    key: its `cache_key`. overlay: the heatmap in `colormap` (alpha grows with
    relevance), flipped like `spectrogram` when it lies over one; None for a text item.
    spectrogram: the sound explained as a greyscale picture, low bands at the bottom.
    """

    key: tuple
    explanation: Explanation
    colormap: str
    overlay: QImage | None = None
    spectrogram: QImage | None = None


def explain_and_render(
    library: object,
    query: SearchQuery,
    result: SearchResult,
    vectors: Mapping[str, np.ndarray] | None,
    method: str,
    colormap: str,
    cache: ExplainCache,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> Rendered:
    """A job: the explanation from `cache`, or computed and kept there, in `colormap`."""
    key = cache_key(query, result, method)
    explanation = cache.get(key)
    if explanation is None:
        explanation = explain(library, query, result, vectors=vectors, method=method,
                              progress=progress, cancel=cancel)
        cache.put(key, explanation)
    return render(explanation, key, colormap)


def render(explanation: Explanation, key: tuple, colormap: str, *,
           progress: ProgressCallback = no_progress,
           cancel: CancelToken | None = None) -> Rendered:
    """A job: `explanation`'s map coloured with `colormap`, and its spectrogram in grey."""
    over_sound = explanation.spectrogram is not None
    overlay = None
    if explanation.heatmap is not None and explanation.heatmap.size:
        heat = np.asarray(explanation.heatmap)
        # the preview never shows more pixels than this: a map over a 50 MP photo need not
        step = max(1, math.ceil(max(heat.shape) / IMAGE_MAX_SIDE))
        heat = heat[::step, ::step]
        overlay = to_qimage(colorize(heat[::-1] if over_sound else heat, colormap),
                          QImage.Format.Format_RGBA8888)
    spectrogram = (to_qimage(spectrogram_picture(explanation.spectrogram),
                             QImage.Format.Format_Grayscale8) if over_sound else None)
    return Rendered(key, explanation, colormap, overlay, spectrogram)


# ---------------------------------------------------------------------------- words


def token_colour(weight: float) -> QColor:
    """Warm for a word that raised the similarity, cool for one that lowered it; the
    stronger its part, the more opaque."""
    colour = QColor(WARM if weight >= 0 else COOL)
    colour.setAlphaF(min(1.0, abs(weight)) * MAX_TINT)
    return colour


def shaded_html(text: str, tokens: Sequence[TokenScore], base: QColor) -> str:
    """`text` as rich text, each token's span tinted by its weight.

    The tint is blended over `base` (the label's background): rich text in a QLabel
    takes plain colours. Tokens overlapping an earlier one, or outside `text`, are left
    out rather than garbling it.
    """
    parts, done = [], 0
    for token in sorted(tokens, key=lambda t: t.start):
        if token.start < done or token.end > len(text) or token.end <= token.start:
            continue
        tint = token_colour(token.weight)
        a = tint.alphaF()
        blended = QColor.fromRgbF(*(a * c + (1 - a) * b for c, b in zip(
            tint.getRgbF()[:3], base.getRgbF()[:3], strict=True)))
        parts.append(html.escape(text[done:token.start]))
        parts.append(f'<span style="background-color:{blended.name()}">'
                     f"{html.escape(text[token.start:token.end])}</span>")
        done = token.end
    parts.append(html.escape(text[done:]))
    return "".join(parts)


# ---------------------------------------------------------------------------- the bar


class RelevanceBar(QWidget):
    """A "Why?" toggle, the method, the colour map and the overlay's opacity, what the
    explanation is doing, and the query's words shaded by their part in the match."""

    rendered = Signal(object)  # Rendered: the shown result's explanation, to draw
    cleared = Signal()  # what was drawn is stale: take it away
    opacity_changed = Signal(float)  # 0..1

    DEFAULT_OPACITY = 55  # %

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._library: object | None = None
        self._result: SearchResult | None = None
        self._query: SearchQuery | None = None
        self._vectors: Mapping[str, np.ndarray] | None = None
        self._methods: list[str] | None = None  # None: the result's view is still loading
        self._chosen: str | None = None  # the method picked by hand, kept across results
        self._shown: Rendered | None = None
        self.cache = ExplainCache()
        self.slot = TaskSlot(self)
        self.slot.result.connect(self._on_rendered)
        self.slot.failed.connect(self._on_failed)
        self.slot.progress.connect(self._on_progress)

        self.toggle = QToolButton(text="Why?", checkable=True, checked=True)
        self.toggle.setToolTip("Show why this item matches the query: a relevance map over it")
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.toggle.toggled.connect(self._on_toggled)
        self.method_box = QComboBox()
        self.method_box.setToolTip("How the relevance is computed (the recommended one first)")
        self.method_box.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.method_box.setMinimumContentsLength(12)
        self.method_box.currentIndexChanged.connect(self._on_method)
        self.colormap_box = QComboBox()
        self.colormap_box.addItems(COLORMAPS)
        self.colormap_box.setToolTip("Colour map of the overlay")
        self.colormap_box.currentTextChanged.connect(self._recolour)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(self.DEFAULT_OPACITY)
        self.opacity_slider.setMaximumWidth(90)
        self.opacity_slider.valueChanged.connect(self._on_opacity)
        self._on_opacity(self.DEFAULT_OPACITY)
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.query_line = QLabel()
        self.query_line.setTextFormat(Qt.TextFormat.RichText)
        self.query_line.setWordWrap(True)
        self.query_line.setToolTip("The query's words, tinted by how much each drove the match"
                                   " (warm: up, cool: down)")
        self.query_line.hide()

        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        for widget in (self.toggle, self.method_box, self.colormap_box, self.opacity_slider):
            controls.addWidget(widget)
        controls.addStretch(1)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 2, 0, 2)
        column.setSpacing(2)
        column.addLayout(controls)
        column.addWidget(self.status)
        column.addWidget(self.query_line)
        self._refresh()

    # -- public --------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether relevance maps are asked for (the "Why?" toggle)."""
        return self.toggle.isChecked()

    @property
    def method(self) -> str | None:
        return self.method_box.currentData()

    @property
    def colormap(self) -> str:
        return self.colormap_box.currentText()

    @property
    def opacity(self) -> float:
        return self.opacity_slider.value() / 100

    @property
    def shown(self) -> Rendered | None:
        """The explanation drawn now, if any."""
        return self._shown

    def set_library(self, library: object | None) -> None:
        """Follow another library: its explanations stop and are forgotten."""
        self.slot.shutdown()
        self.cache.clear()
        self._library = library
        self.set_subject(None)

    def set_subject(self, result: SearchResult | None, query: SearchQuery | None = None,
                    vectors: Mapping[str, np.ndarray] | None = None) -> None:
        """Another result or query is shown: the stale explanation stops and goes.

        Nothing is explained until `set_methods` says the result's view is loaded.
        """
        self.slot.cancel()
        self._result, self._query, self._vectors = result, query, vectors
        self._methods = None
        self._fill_methods([])
        self._forget()

    def set_methods(self, methods: Sequence[str]) -> None:
        """The result's view is loaded: offer `methods` (best first) and explain if on."""
        self._methods = list(methods)
        self._fill_methods(self._methods)
        self._explain()

    def shutdown(self) -> None:
        self.slot.shutdown()

    def _fill_methods(self, methods: Sequence[str]) -> None:
        box = self.method_box
        box.blockSignals(True)  # filling it is not a choice
        box.clear()
        for method in methods:
            box.addItem(METHOD_LABELS.get(method, method), method)
        if self._chosen in methods:
            box.setCurrentIndex(list(methods).index(self._chosen))
        box.blockSignals(False)

    # -- working ---------------------------------------------------------------------------

    def _explain(self) -> None:
        self.slot.cancel()
        self._forget()
        method = self.method
        if not self.active or self._library is None or self._query is None \
                or self._result is None or method is None:
            return
        self._status(f"Computing {METHOD_LABELS.get(method, method)}…", "info")
        self.slot.start(explain_and_render, self._library, self._query, self._result,
                        dict(self._vectors) if self._vectors else None, method, self.colormap,
                        self.cache, title=f"Explaining {Path(self._result.path).name}")

    def _forget(self) -> None:
        self._shown = None
        self.query_line.hide()
        self._refresh()
        self.cleared.emit()

    def _recolour(self) -> None:
        # While an explanation is computed nothing is shown, and its result is checked
        # against the colour map when it comes. Once one is shown, a job still running is
        # at most another colouring of it (or the one that just delivered it, not yet
        # `finished`: waiting for that one lost the choice), so this one replaces it.
        if self._shown is not None:
            self.slot.start(render, self._shown.explanation, self._shown.key, self.colormap,
                            title="Colouring the relevance map")

    def _on_rendered(self, rendered: Rendered) -> None:
        self._shown = rendered
        explanation = rendered.explanation
        took = explanation.seconds
        self._status(f"{explanation.label} · " + (f"{took:.1f} s" if took >= 1 else
                                                   f"{took * 1000:.0f} ms")
                     + f" · similarity {explanation.similarity:.2f}", "info")
        query_text = self._query.text if self._query is not None else None
        if explanation.query_tokens and query_text:
            base = self.palette().color(QPalette.ColorRole.Window)
            self.query_line.setText("Query: " + shaded_html(query_text, explanation.query_tokens,
                                                            base))
            self.query_line.show()
        self.rendered.emit(rendered)
        if rendered.colormap != self.colormap:  # changed while it was computing
            self.slot.start(render, explanation, rendered.key, self.colormap,
                            title="Colouring the relevance map")

    def _on_failed(self, message: str) -> None:
        self._status(f"No relevance map: {message}", "error")

    def _on_progress(self, progress: Progress) -> None:
        method = self.method
        if progress.total > 0 and method is not None:
            self._status(f"Computing {METHOD_LABELS.get(method, method)}… "
                         f"{100 * progress.done / progress.total:.0f} %", "info")

    def _on_toggled(self, on: bool) -> None:
        if on:
            self._explain()
        else:
            self.slot.cancel()
            self._forget()

    def _on_method(self) -> None:
        self._chosen = self.method
        self._explain()

    def _on_opacity(self, value: int) -> None:
        self.opacity_slider.setToolTip(f"Opacity of the overlay: {value} %")
        self.opacity_changed.emit(value / 100)

    # -- showing -------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Enable what applies to the subject, and say why the rest does not."""
        has_query = self._query is not None and self._result is not None
        has_map = has_query and self._result.modality != "text"
        self.toggle.setEnabled(has_query)
        self.method_box.setEnabled(has_query and self.active and bool(self._methods))
        self.colormap_box.setEnabled(has_map and self.active)
        self.opacity_slider.setEnabled(has_map and self.active)
        if self._result is None:
            self._status("")
        elif not has_query:
            self._status("Search to see why items match.")
        elif not self.active:
            self._status("Relevance maps are off.")
        elif self._methods == []:
            self._status(f"No relevance map for this item in the {self._result.space} space.")
        else:
            self._status("")

    def _status(self, text: str, tone: str = "hint") -> None:
        """tone: "hint" (why nothing shows: secondary text), "info" or "error"."""
        self.status.setText(text)
        self.status.setToolTip(text)
        self.status.setEnabled(tone != "hint")
        self.status.setStyleSheet(f"color: {ERROR.name()};" if tone == "error" else "")

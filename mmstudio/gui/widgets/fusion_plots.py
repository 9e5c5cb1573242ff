"""The fusion panel's plots: a confusion heatmap and per-input contribution bars.

Drawn with pyqtgraph, which takes about 0.3 s to import: the fusion panel imports this
module when it first shows a report, not when the window starts. The plots are for
reading, not exploring: zoom, pan, the context menu and the auto-range button are
off (a mouse wheel over a dock should not shrink a matrix out of sight).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from mmstudio.gui.style import modality_colour

TICK_CHARS = 12  # longer class names are cut on the axes (tool tips give them whole)
MIN_CELL_PX = 22  # below this cells are too small to write their counts in
# a white-to-blue ramp (ColorBrewer "Blues"): the eye reads darker as more
LOW, HIGH = QColor(247, 251, 255), QColor(8, 48, 107)


def short(name: str, n: int = TICK_CHARS) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def input_colours(inputs: Sequence[str]) -> dict[str, QColor]:
    """One colour per input ("image:space"): its modality's, lighter for a second space
    of the same modality so two image spaces stay apart."""
    seen: dict[str, int] = {}
    out = {}
    for name in inputs:
        kind = name.partition(":")[0]
        k = seen.get(kind, 0)
        seen[kind] = k + 1
        colour = modality_colour(kind)
        out[name] = colour.lighter(100 + 35 * k) if k else colour
    return out


def still_plot(parent: QWidget | None = None) -> pg.PlotWidget:
    """A plot in the palette's colours that does not move under the mouse."""
    palette = parent.palette() if parent is not None else QPalette()
    widget = pg.PlotWidget(parent, background=palette.color(QPalette.ColorRole.Base))
    item = widget.getPlotItem()
    item.setMenuEnabled(False)
    item.hideButtons()
    item.getViewBox().setMouseEnabled(False, False)
    text = palette.color(QPalette.ColorRole.Text)
    for name in ("left", "bottom"):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen(text))
        axis.setTextPen(pg.mkPen(text))
        axis.enableAutoSIPrefix(False)  # else 0.43 reads "430" under a "(x0.001)" label
    return widget


class ConfusionHeatmap(QWidget):
    """Rows: true class, columns: predicted, coloured by the share of the row (so a rare
    class's mistakes show as plainly as a common one's), each cell's count written in it.
    Clicking a cell sends `cell_clicked(row, column)`."""

    cell_clicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.classes: tuple[str, ...] = ()
        self.counts = np.zeros((0, 0), np.int64)
        self.fractions = np.zeros((0, 0), np.float32)  # what the image shows
        self.texts: list[pg.TextItem] = []
        self.plot = still_plot(self)
        self.plot.setMinimumSize(220, 200)
        item = self.plot.getPlotItem()
        item.setLabel("left", "true label")
        item.setLabel("bottom", "predicted (numbered as the rows)")
        self.view = item.getViewBox()
        self.view.invertY(True)  # row 0 on top, as a matrix is read
        self.view.setAspectLocked(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        ramp = pg.ColorMap([0.0, 1.0], [LOW, HIGH])
        self.image.setLookupTable(ramp.getLookupTable(nPts=256))
        self.view.addItem(self.image)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self.plot.scene().sigMouseMoved.connect(self._hovered)
        self.view.sigResized.connect(self._fit_counts)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    def set_matrix(self, classes: Sequence[str], confusion: Sequence[Sequence[int]]) -> None:
        self.clear()
        self.classes = tuple(classes)
        counts = np.asarray(confusion, np.int64).reshape(len(classes), len(classes))
        rows = counts.sum(1, keepdims=True)
        self.counts = counts
        self.fractions = (counts / np.maximum(rows, 1)).astype(np.float32)
        self.image.setImage(self.fractions, levels=(0.0, 1.0), autoLevels=False)
        self.image.setRect(0, 0, len(classes), len(classes))
        for (r, c), n in np.ndenumerate(counts):
            dark = self.fractions[r, c] > 0.5
            text = pg.TextItem(str(n), color=LOW if dark else HIGH, anchor=(0.5, 0.5))
            if not n:
                text.setColor(QColor(150, 160, 175))  # zero: present, but quiet
            text.setPos(c + 0.5, r + 0.5)
            self.view.addItem(text)
            self.texts.append(text)
        # rows named and numbered, columns numbered: names side by side under a narrow
        # matrix would overlap
        item = self.plot.getPlotItem()
        item.getAxis("left").setTicks([[(k + 0.5, f"{short(name)} {k + 1}")
                                        for k, name in enumerate(classes)]])
        item.getAxis("bottom").setTicks([[(k + 0.5, str(k + 1)) for k in range(len(classes))]])
        self.view.setRange(xRange=(0, len(classes)), yRange=(0, len(classes)), padding=0.02)
        self._fit_counts()

    def clear(self) -> None:
        for text in self.texts:
            self.view.removeItem(text)
        self.texts.clear()
        self.classes = ()
        self.counts = np.zeros((0, 0), np.int64)
        self.fractions = np.zeros((0, 0), np.float32)
        self.image.clear()
        item = self.plot.getPlotItem()
        item.getAxis("left").setTicks([[]])
        item.getAxis("bottom").setTicks([[]])

    # -- cells and the mouse -----------------------------------------------------------

    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        """(row, column) of the cell under a scene position, None off the matrix. The
        image item maps the scene to its own pixels (one pixel per cell), whatever the
        view's range, aspect and flip."""
        n = len(self.classes)
        if not n:
            return None
        p = self.image.mapFromScene(scene_pos)
        col, row = math.floor(p.x()), math.floor(p.y())
        return (row, col) if 0 <= row < n and 0 <= col < n else None

    def cell_scene_pos(self, row: int, col: int) -> QPointF:
        """The scene position of a cell's centre (what a click there lands on)."""
        return self.image.mapToScene(QPointF(col + 0.5, row + 0.5))

    def click_scene(self, scene_pos: QPointF) -> tuple[int, int] | None:
        cell = self.cell_at(scene_pos)
        if cell is not None:
            self.cell_clicked.emit(*cell)
        return cell

    def _clicked(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.click_scene(event.scenePos()):
            event.accept()

    def _hovered(self, scene_pos: QPointF) -> None:
        cell = self.cell_at(scene_pos)
        if cell is None:
            self.plot.setToolTip("")
            return
        r, c = cell
        n, row = int(self.counts[r, c]), int(self.counts[r].sum())
        self.plot.setToolTip(f"true {html.escape(self.classes[r])} → predicted "
                             f"{html.escape(self.classes[c])}: {n} of {row} items "
                             f"({100 * n / max(row, 1):.0f}%)" + ("; click to list them" if n else ""))

    def _fit_counts(self, *_) -> None:
        """Write the counts only when a cell is big enough to hold them."""
        n = len(self.classes)
        if not n:
            return
        width = self.view.sceneBoundingRect().width() / n
        font = QFont(self.font())
        font.setPixelSize(int(max(9, min(16, width / 3))))
        for text in self.texts:
            text.setFont(font)
            text.setVisible(width >= MIN_CELL_PX)


class ContributionBars(QWidget):
    """Bars of how much each input counts, with a legend and a caption above them.

    `show_grouped`: a group per class, a bar per input (attention fusion's mean
    attention). `show_single`: a bar per input (late fusion's weights, or the accuracy
    lost when an input is dropped). `series` keeps the drawn heights per input.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.series: dict[str, list[float]] = {}
        self.bars: list[pg.BarGraphItem] = []
        self._extras: list = []  # value labels and the zero line
        self.legend = QLabel(textFormat=Qt.TextFormat.RichText, wordWrap=True)
        self.plot = still_plot(self)
        self.plot.setMinimumSize(220, 160)
        self.view = self.plot.getPlotItem().getViewBox()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.legend)
        layout.addWidget(self.plot, 1)

    def clear(self) -> None:
        for item in [*self.bars, *self._extras]:
            self.view.removeItem(item)
        self.bars.clear()
        self._extras.clear()
        self.series = {}
        self.legend.setText("")
        self.plot.getPlotItem().getAxis("bottom").setTicks([[]])
        self.plot.getPlotItem().setLabel("left", "")

    def _legend(self, colours: Mapping[str, QColor]) -> None:
        self.legend.setText("&nbsp;&nbsp;".join(
            f"<span style='color:{c.name()}; font-size:14px'>■</span>&nbsp;{html.escape(n)}"
            for n, c in colours.items()))

    def show_grouped(self, groups: Sequence[str], inputs: Sequence[str],
                     values: Mapping[str, Mapping[str, float]], unit: str) -> None:
        """values: group -> input -> height (a missing group draws no bars)."""
        self.clear()
        colours = input_colours(inputs)
        width = 0.8 / max(len(inputs), 1)
        for m, name in enumerate(inputs):
            heights = [float(values.get(g, {}).get(name, 0.0)) for g in groups]
            xs = [k + (m - (len(inputs) - 1) / 2) * width for k in range(len(groups))]
            self._add(pg.BarGraphItem(x=xs, height=heights, width=width * 0.92,
                                      brush=colours[name], pen=pg.mkPen(None)))
            self.series[name] = heights
        self._legend(colours)
        self._axes(groups, unit, 0.0, 1.04)  # a little over 1: the top tick stays whole

    def show_single(self, inputs: Sequence[str], values: Mapping[str, float], unit: str,
                    *, signed: bool = False, ticks: Sequence[str] | None = None) -> None:
        """A bar per input, its value written over it. signed: values may go below 0.
        ticks: what the axis calls each input (else its name)."""
        self.clear()
        colours = input_colours(inputs)
        heights = [float(values.get(n, 0.0)) for n in inputs]
        self._add(pg.BarGraphItem(x=list(range(len(inputs))), height=heights, width=0.6,
                                  brushes=[colours[n] for n in inputs], pen=pg.mkPen(None)))
        self.series = {n: [h] for n, h in zip(inputs, heights, strict=True)}
        text = self.palette().color(QPalette.ColorRole.Text)
        for k, h in enumerate(heights):
            label = pg.TextItem(f"{h:+.2f}" if signed else f"{h:.2f}", color=text,
                                anchor=(0.5, 1.0 if h >= 0 else 0.0))
            label.setPos(k, h)
            self._add(label)
        self._legend(colours)
        low = min(0.0, *heights) if signed else 0.0
        high = max(0.05, *heights) if signed else 1.04
        span = high - low
        self._axes(list(ticks or inputs), unit, low - (0.12 * span if low < 0 else 0),
                   high + 0.12 * span)
        if signed:
            self._add(pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen(text, width=1)))

    def _add(self, item) -> None:
        self.view.addItem(item)
        (self.bars if isinstance(item, pg.BarGraphItem) else self._extras).append(item)

    def _axes(self, names: Sequence[str], unit: str, low: float, high: float) -> None:
        item = self.plot.getPlotItem()
        item.getAxis("bottom").setTicks([[(k, short(n)) for k, n in enumerate(names)]])
        item.setLabel("left", unit)
        self.view.setRange(xRange=(-0.6, len(names) - 0.4), yRange=(low, high), padding=0)

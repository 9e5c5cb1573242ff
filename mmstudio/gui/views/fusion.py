"""The fusion panel: train fusion classifiers on a label schema and read what they learned.

Threads. Every library read (the schemas, the saved versions, a report) is one
`read_state` job on `read_slot`: a newer request (another schema or version, a
refresh) cancels the stale one, so the last choice wins. Training is
`mmstudio.fusion.train` on `train_slot`, which the main window's jobs list watches;
a new Train cancels a stale one. Nothing here reads the disk on the GUI thread.

The plots load pyqtgraph (about 0.3 s), so they are built when the first report is
shown, not when the window starts.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import QModelIndex, QObject, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from mmstudio.core.jobs import Progress
from mmstudio.fusion import saved
from mmstudio.fusion.metrics import FUSION_METHODS, FusionReport, MethodReport
from mmstudio.fusion.train import Hyper, train
from mmstudio.gui.models.table import FlatTableModel
from mmstudio.gui.workers import TaskSlot

log = logging.getLogger(__name__)

METHOD_CHOICES = {"All methods": list(FUSION_METHODS), "Early fusion": ["early"],
                  "Late fusion": ["late"], "Attention fusion": ["attention"]}
ERROR = QColor(192, 57, 43)
BASELINE = QColor(128, 128, 128)
ATTENTION_CAPTION = ("Mean attention per input, over the items of each true label. It shows "
                     "where the model looked, not proof that an input caused the prediction.")
LATE_CAPTION = ("Late fusion's learned weight per input: how much each input's own "
                "prediction counts in the mix.")
ABLATION_CAPTION = ("Accuracy lost when an input is dropped at test time (accuracy with all "
                    "inputs − accuracy without it). Below zero: the method did better without it.")


# ---------------------------------------------------------------------------- the job


@dataclass(frozen=True)
class FusionState:
    """What the panel shows, read from the library in one job."""

    schemas: tuple[str, ...] = ()  # single-label schemas (fusion trains those only)
    multi: tuple[str, ...] = ()  # multi-label schemas, named in the empty state
    schema: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)  # label -> labelled items
    versions: tuple[int, ...] = ()
    report: FusionReport | None = None


def read_state(library, schema: str | None = None, version: int | None = None, *,
               progress, cancel) -> FusionState:
    """A job: the schemas, and for `schema` (else a trained one, else the first) its
    label counts, saved versions and the report of `version` (else the latest)."""
    schemas = library.labels.schemas()
    single = tuple(s.name for s in schemas if not s.multi)
    multi = tuple(s.name for s in schemas if s.multi)
    if schema not in single:
        trained = [s for s in saved.trained_schemas(library) if s in single]
        schema = trained[0] if trained else (single[0] if single else None)
    if schema is None:
        return FusionState(single, multi)
    cancel.raise_if_cancelled()
    versions = tuple(saved.versions(library, schema))
    if version not in versions:
        version = versions[-1] if versions else None
    report = saved.report(library, schema, version) if version is not None else None
    return FusionState(single, multi, schema, library.labels.counts(schema), versions, report)


# ------------------------------------------------------------------------- the models


def input_labels(inputs: Sequence[str]) -> dict[str, str]:
    """Short names for inputs: the modality alone ("image") when only one space of it
    is used, else the whole "image:space"."""
    kinds = [n.partition(":")[0] for n in inputs]
    return {n: k if kinds.count(k) == 1 else n for n, k in zip(inputs, kinds, strict=True)}


def best_fusion(report: FusionReport) -> str | None:
    """The fusion method (not a probe) with the highest macro-F1."""
    fusion = report.fusion
    return max(fusion, key=lambda m: (fusion[m].macro_f1, fusion[m].accuracy)) if fusion else None


class MethodsModel(FlatTableModel):
    """A row per method, fusion methods first, then the single-input probes (grey: the
    baselines fusion has to beat); the best fusion method in bold."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.COLUMNS = ()
        self.report: FusionReport | None = None
        self.rows: list[MethodReport] = []
        self.best: str | None = None

    def set_report(self, report: FusionReport | None) -> None:
        self.beginResetModel()
        self.report = report
        self.rows = ([*report.fusion.values(), *report.probes.values()]
                     if report is not None else [])
        self.best = best_fusion(report) if report is not None else None
        names = input_labels(report.inputs) if report is not None else {}
        self.COLUMNS = ("Method", "Accuracy", "Macro-F1",
                        *(f"w/o {names[n]}" for n in (report.inputs if report else ())))
        self.endResetModel()

    def _row_count(self) -> int:
        return len(self.rows)

    def row_of(self, method: str) -> int:
        return next((k for k, m in enumerate(self.rows) if m.method == method), -1)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if (role == Qt.ItemDataRole.ToolTipRole and orientation == Qt.Orientation.Horizontal
                and section >= 3 and self.report is not None):
            return (f"Accuracy with {self.report.inputs[section - 3]} dropped at test time "
                    "(in brackets: the change from the accuracy with every input)")
        return super().headerData(section, orientation, role)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or self.report is None:
            return None
        m, col = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return f"{m.method} (baseline)" if m.is_probe else m.method
            if col == 1:
                return f"{m.accuracy:.3f}"
            if col == 2:
                return f"{m.macro_f1:.3f}"
            without = m.ablation[self.report.inputs[col - 3]].accuracy
            return f"{without:.3f} ({without - m.accuracy:+.2f})"
        if role == Qt.ItemDataRole.UserRole:
            return m.method
        if role == Qt.ItemDataRole.FontRole and m.method == self.best:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ForegroundRole and m.is_probe:
            return BASELINE
        if role == Qt.ItemDataRole.TextAlignmentRole and col:
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        if role == Qt.ItemDataRole.ToolTipRole and col == 0:
            tip = ("a classifier on this input alone: the baseline fusion should beat"
                   if m.is_probe else f"{m.method} fusion of {', '.join(self.report.inputs)}")
            if m.method == self.best:
                tip += " — the best fusion method (highest macro-F1)"
            if m.method == self.report.best:
                tip += "; its predictions were written as label suggestions"
            return f"{tip}; cross-validation took {m.seconds:.1f} s"
        return None


class ClassesModel(FlatTableModel):
    """Per-class precision, recall, F1 and support of one method."""

    COLUMNS = ("Label", "Precision", "Recall", "F1", "Items")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.rows: list[tuple[str, float, float, float, int]] = []

    def set_method(self, classes: Sequence[str], method: MethodReport | None) -> None:
        self.beginResetModel()
        self.rows = [] if method is None else [
            (c, s.precision, s.recall, s.f1, s.support)
            for c in classes if (s := method.per_class.get(c)) is not None]
        self.endResetModel()

    def _row_count(self) -> int:
        return len(self.rows)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        value = self.rows[index.row()][index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{value:.2f}" if isinstance(value, float) else str(value)
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column():
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return None


def _table(model: FlatTableModel) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().hide()
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 8)
    view.setWordWrap(False)
    view.setAlternatingRowColors(True)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    return view


def _fit_rows(view: QTableView, most: int) -> None:
    """As tall as its rows (up to `most`, then it scrolls): the plots get the rest."""
    rows = min(view.model().rowCount(), most)
    view.setMaximumHeight(view.horizontalHeader().sizeHint().height()
                          + rows * view.verticalHeader().defaultSectionSize()
                          + 2 * view.frameWidth() + 2)


# ----------------------------------------------------------------------- the panel


class FusionPanel(QWidget):
    show_items = Signal(list, str)  # the item ids of a clicked confusion cell, a title
    message = Signal(str)  # a line for the status bar
    trained = Signal(object)  # FusionReport of a finished training (suggestions changed)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = None
        self.state = FusionState()
        self.report: FusionReport | None = None
        self.method: str | None = None  # the method the plots show
        self.hyper: Hyper | None = None  # training settings (None: the defaults; tests: few epochs)
        self.heatmap = self.bars = None  # built with the first report
        self._train_job = None  # the training started last: only its cancel is said
        self.read_slot = TaskSlot(self)
        self.train_slot = TaskSlot(self)
        self.read_slot.result.connect(self._on_state)
        self.read_slot.failed.connect(self._show_error)
        self.train_slot.progress.connect(self._on_progress)
        self.train_slot.result.connect(self._on_trained)
        self.train_slot.failed.connect(self._train_failed)
        self.train_slot.job_started.connect(self._train_started)
        self.train_slot.job_ended.connect(self._train_ended)
        self.train_slot.idle.connect(self._train_idle)
        self.methods_model = MethodsModel(self)
        self.classes_model = ClassesModel(self)
        self._build()
        self.set_library(None)

    # -- public -------------------------------------------------------------------------

    def set_library(self, library) -> None:
        """Follow another library; None: it is closing, so stop every job and clear."""
        self.library = None  # callbacks delivered while the jobs stop must not start more
        self.train_slot.shutdown()
        self.read_slot.shutdown()
        self._train_job = None
        self.library = library
        self.state = FusionState()
        self._fill_schemas()
        self._fill_versions()
        self._show_report(None)
        self._show_error("")
        self._train_idle()
        self._top.setEnabled(library is not None)
        if library is None:
            self._hint("Open a library to train fusion classifiers on its labels.")
            return
        self._hint("Reading the label schemas…")
        self._read(None, None)

    def refresh(self) -> None:
        """Read the schemas and saved versions again (labels or schemas changed)."""
        if self.library is not None:
            self._read(self.state.schema, self._version())

    def shutdown(self) -> None:
        self.set_library(None)

    @property
    def schema(self) -> str | None:
        return self.state.schema

    def train(self) -> None:
        """Train the chosen methods (the probes always run as baselines)."""
        schema = self.state.schema
        if self.library is None or schema is None:
            return
        methods = [*METHOD_CHOICES[self.method_box.currentText()], "probes"]
        self._show_error("")
        self.progress.setRange(0, 0)  # busy until the first count arrives
        self.progress.setFormat("starting…")
        self.train_slot.start(train, self.library, schema, methods, None, self.folds.value(),
                              self.hyper, title=f"fusion: train {schema}")
        self._train_row.show()
        self.cancel_button.setEnabled(True)
        self._empty_hint()

    def cancel(self) -> None:
        if self.train_slot.busy:
            self.train_slot.cancel()
            self.cancel_button.setEnabled(False)
            self.progress.setFormat("cancelling…")

    def select_method(self, method: str) -> None:
        row = self.methods_model.row_of(method)
        if row >= 0:
            self.table.selectRow(row)

    # -- building -----------------------------------------------------------------------

    def _build(self) -> None:
        self.schema_box = QComboBox(toolTip="The label schema to learn (single-label)")
        self.schema_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.schema_box.activated.connect(lambda _: self._read(self.schema_box.currentText(), None))
        self.counts_label = QLabel()
        self.method_box = QComboBox(toolTip="Fusion methods to train; a classifier per input "
                                            "alone always runs too, as the baseline")
        self.method_box.addItems(list(METHOD_CHOICES))
        self.folds = QSpinBox(minimum=2, maximum=10, value=5, prefix="folds ",
                              toolTip="Cross-validation folds (fewer when a label has fewer items)")
        self.train_button = QPushButton("Train", toolTip="Cross-validate, keep the models as a "
                                        "new version and write label suggestions")
        self.train_button.clicked.connect(self.train)
        self.version_box = QComboBox(toolTip="Saved versions of this schema's models")
        self.version_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.version_box.activated.connect(
            lambda _: self._read(self.state.schema, self.version_box.currentData()))
        self.progress = QProgressBar()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self._train_row = QWidget()  # shown while a training runs
        row = QHBoxLayout(self._train_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        # two rows, so the panel still fits a narrow dock: what to learn, then how
        first, second = QHBoxLayout(), QHBoxLayout()
        for widget in (QLabel("Schema"), self.schema_box, self.counts_label):
            first.addWidget(widget)
        first.addStretch(1)
        first.addWidget(QLabel("Version"))
        first.addWidget(self.version_box)
        for widget in (self.method_box, self.folds, self.train_button):
            second.addWidget(widget)
        second.addWidget(self._train_row, 20)
        second.addStretch(1)
        self._top = QWidget()
        top = QVBoxLayout(self._top)
        top.setContentsMargins(0, 0, 0, 0)
        top.addLayout(first)
        top.addLayout(second)
        self.error_label = QLabel(wordWrap=True, textInteractionFlags=(
            Qt.TextInteractionFlag.TextSelectableByMouse))
        palette = self.error_label.palette()
        palette.setColor(QPalette.ColorRole.WindowText, ERROR)
        self.error_label.setPalette(palette)

        self.hint = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.hint.setStyleSheet("color: palette(placeholder-text); font-size: 15px;")
        self.summary = QLabel(wordWrap=True)
        self.table = _table(self.methods_model)
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)
        self.heatmap_title = QLabel(wordWrap=True)
        self.classes_view = _table(self.classes_model)
        self.classes_view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.classes_view.horizontalHeader().setSectionResizeMode(  # long label names get room
            0, QHeaderView.ResizeMode.Stretch)
        self.bars_title = QLabel(wordWrap=True)
        self.caption = QLabel(wordWrap=True)
        self.caption.setStyleSheet("color: palette(placeholder-text);")
        self._left = QVBoxLayout()  # the heatmap goes in at index 1 once built
        self._left.setContentsMargins(0, 0, 0, 0)
        self._left.addWidget(self.heatmap_title)
        self._left.addWidget(self.classes_view)
        self._right = QVBoxLayout()  # the bars go in at index 1 once built
        self._right.setContentsMargins(0, 0, 0, 0)
        self._right.addWidget(self.bars_title)
        self._right.addWidget(self.caption)
        plots = QSplitter(Qt.Orientation.Horizontal)
        for layout in (self._left, self._right):
            holder = QWidget()
            holder.setLayout(layout)
            plots.addWidget(holder)
        self.content = QWidget()  # the table is as tall as its rows; the plots get the rest
        content = QVBoxLayout(self.content)
        content.setContentsMargins(0, 0, 0, 0)
        content.addWidget(self.summary)
        content.addWidget(self.table)
        content.addWidget(plots, 1)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.hint)
        self.stack.addWidget(self.content)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self._top)
        layout.addWidget(self.error_label)
        layout.addWidget(self.stack, 1)

    def _ensure_plots(self) -> None:
        if self.heatmap is not None:
            return
        from mmstudio.gui.widgets.fusion_plots import ConfusionHeatmap, ContributionBars

        self.heatmap = ConfusionHeatmap()
        self.heatmap.cell_clicked.connect(self._cell_clicked)
        self.bars = ContributionBars()
        self._left.insertWidget(1, self.heatmap, 3)
        self._right.insertWidget(1, self.bars, 1)

    # -- reading ------------------------------------------------------------------------

    def _read(self, schema: str | None, version: int | None) -> None:
        self.read_slot.start(read_state, self.library, schema, version, title="fusion: read")

    def _version(self) -> int | None:
        return self.version_box.currentData()

    def _on_state(self, state: FusionState) -> None:
        if state.schema != self.state.schema:
            self._show_error("")
        self.state = state
        self._fill_schemas()
        self._fill_versions(state.report.version if state.report else None)
        self._show_report(state.report)
        self._empty_hint()

    def _empty_hint(self) -> None:
        """What to do next, when there is no report to show."""
        state = self.state
        if self.library is None or self.report is not None:
            return
        if self.train_slot.busy:
            self._hint("Training… the methods' comparison shows here when it ends.")
        elif state.schema is None:
            self._hint("Label items in the Labeling panel first: fusion learns a "
                       "single-label schema." + (
                           f"\n({', '.join(state.multi)} {'is' if len(state.multi) == 1 else 'are'}"
                           " multi-label.)" if state.multi else ""))
        elif state.report is None:
            n = sum(state.counts.values())
            self._hint(f"Train to compare methods.\n{n} items carry a label of "
                       f"{state.schema!r}." if n else
                       f"Label items with {state.schema!r} in the Labeling panel first "
                       "(two or more per label), then train.")

    def _fill_schemas(self) -> None:
        box, state = self.schema_box, self.state
        box.clear()
        box.addItems(list(state.schemas))
        if state.schema is not None:
            box.setCurrentText(state.schema)
        counts = state.counts
        self.counts_label.setText(f"{sum(counts.values())} labelled" if state.schema else "")
        self.counts_label.setToolTip(", ".join(f"{k} {v}" for k, v in counts.items()))
        self.train_button.setEnabled(state.schema is not None)

    def _fill_versions(self, current: int | None = None) -> None:
        box = self.version_box
        box.clear()
        for v in reversed(self.state.versions):  # newest first
            box.addItem(f"v{v}" + (" (latest)" if v == self.state.versions[-1] else ""), v)
        if current is not None:
            box.setCurrentIndex(box.findData(current))
        box.setEnabled(bool(self.state.versions))

    # -- training -----------------------------------------------------------------------

    def _on_progress(self, p: Progress) -> None:
        if p.total > 0:
            self.progress.setRange(0, p.total)
            self.progress.setValue(min(p.done, p.total))
        # one line: a long message wraps inside the bar in some styles
        message = self.progress.fontMetrics().elidedText(
            p.message, Qt.TextElideMode.ElideRight, max(self.progress.width() - 60, 40))
        self.progress.setFormat(f"{message} · %p%" if p.message else "%p%")
        self.progress.setToolTip(p.message)

    def _on_trained(self, report: FusionReport) -> None:
        self.read_slot.cancel()  # a read begun before the save would list stale versions
        best = report.methods[report.best]
        self.message.emit(f"fusion v{report.version}: {report.best} {best.accuracy:.2f} "
                          "accuracy; suggestions written")
        self.trained.emit(report)
        if report.schema != self.state.schema:  # the person moved on to another schema
            return
        versions = tuple(sorted({*self.state.versions, report.version}))
        self.state = FusionState(self.state.schemas, self.state.multi, self.state.schema,
                                 self.state.counts, versions, report)
        self._fill_versions(report.version)
        self._show_report(report)

    def _train_failed(self, message: str) -> None:
        self._show_error(message)
        self.message.emit(f"fusion training failed: {message}")

    def _train_started(self, job) -> None:
        self._train_job = job

    def _train_ended(self, job, state: str, _value) -> None:
        if state != "cancelled":
            return
        # Only the training started last is stopped by the person's Cancel (or by
        # closing); one that a newer Train replaced says nothing, even when it stops
        # after the newer one is done (so `current is None` cannot tell them apart).
        if job is self._train_job:
            self.message.emit("fusion training cancelled")
        # a cancel that came after the save leaves a version this panel never received
        self.refresh()

    def _train_idle(self) -> None:
        if not self.train_slot.busy:
            self._train_row.hide()
            self._empty_hint()

    # -- showing a report ---------------------------------------------------------------

    def _hint(self, text: str) -> None:
        self.hint.setText(text)
        self.stack.setCurrentWidget(self.hint)

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    def _show_report(self, report: FusionReport | None) -> None:
        keep = self.method
        self.report = report
        self.method = None
        self.methods_model.set_report(report)
        if report is None:
            self.summary.setText("")
            self._show_method(None)
            return
        self._ensure_plots()
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(report.created))
        self.summary.setText(
            f"<b>v{report.version}</b> of {html.escape(report.schema)} · {report.n_items} items"
            f" · {len(report.classes)} labels · {report.folds}-fold cross-validation · "
            f"inputs {html.escape(', '.join(report.inputs))} · trained {created}. "
            "<span style='color:gray'>Grey rows: one input alone (baselines); bold: the best "
            "fusion method.</span>")
        self.stack.setCurrentWidget(self.content)
        _fit_rows(self.table, 10)
        method = keep if keep in report.methods else (best_fusion(report) or report.best)
        self.select_method(method)

    def _row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        method = current.data(Qt.ItemDataRole.UserRole) if current.isValid() else None
        self._show_method(method)

    def _show_method(self, method: str | None) -> None:
        report = self.report
        m = report.methods.get(method) if report is not None and method else None
        self.method = m.method if m is not None else None
        self.classes_model.set_method(report.classes if report else (), m)
        _fit_rows(self.classes_view, 8)
        if self.heatmap is None:
            return
        if m is None:
            self.heatmap.clear()
            self.bars.clear()
            self.heatmap_title.setText("")
            self.bars_title.setText("")
            self.caption.setText("")
            return
        self.heatmap.set_matrix(report.classes, m.confusion)
        self.heatmap_title.setText(
            f"<b>Confusion · {html.escape(m.method)}</b> — rows: true label, columns: "
            "predicted; colour: share of the row. Click a cell to list its items.")
        ticks = list(input_labels(report.inputs).values())
        if m.attention:
            self.bars.show_grouped(report.classes, report.inputs, m.attention, "mean attention")
            title, caption = "Attention per input and label", ATTENTION_CAPTION
        elif m.late_weights:
            self.bars.show_single(report.inputs, m.late_weights, "weight", ticks=ticks)
            title, caption = "Late fusion weights", LATE_CAPTION
        else:
            drops = {n: m.accuracy - m.ablation[n].accuracy for n in report.inputs}
            self.bars.show_single(report.inputs, drops, "accuracy drop", signed=True,
                                  ticks=ticks)
            title, caption = "Accuracy lost without each input", ABLATION_CAPTION
        self.bars_title.setText(f"<b>{title} · {html.escape(m.method)}</b>")
        self.caption.setText(caption)

    def _cell_clicked(self, row: int, col: int) -> None:
        report = self.report
        if report is None or self.method is None:
            return
        true, predicted = report.classes[row], report.classes[col]
        cell = report.methods[self.method].cell(true, predicted)
        if not cell:
            self.message.emit(f"no item of {true} was predicted {predicted} by {self.method}")
            return
        ranked = sorted(cell, key=lambda p: -p.confidence)  # confident mistakes first
        self.show_items.emit([p.item_id for p in ranked],
                             f"true {true} → predicted {predicted} · {self.method}")

"""The map panel: a space's items on one zoomable map, linked to search and labels.

Its jobs (views/map_jobs.py, on the panel's task slots) read and fit layouts, colour
them, pick lasso selections and load hover cards; the panel routes their results to
the canvas. A PCA map is computed as soon as the panel first shows a space
with no cached map; UMAP (minutes on a large library) only when asked.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from mmstudio.gui.views.map_jobs import (
    Coloured,
    Shown,
    colour_map,
    hover_item,
    lasso_rows,
    load_map,
    place_query,
    recompute_map,
    refresh_map,
    resolve_item,
    spaces_and_schemas,
)
from mmstudio.gui.widgets.map_canvas import BACKGROUND, MapCanvas
from mmstudio.gui.workers import TaskSlot
from mmstudio.maps.build import MapState
from mmstudio.maps.colours import MODE_NAMES, MODES, SCHEMA_MODES
from mmstudio.maps.layout import METHOD_NAMES, METHODS, umap_missing

HOVER_CACHE = 256
# Results drawn over the faded rest: the best ones, about what the grid's first screens
# show. A search returns up to 1,000, which on a small library is every item; the
# "search score" colours show them all.
EMPHASISED_RESULTS = 100
RECOLOUR_DELAY_MS = 400  # labels change in bursts (bulk, undo): recolour once after


# ------------------------------------------------------------------------ the panel


class MapPanel(QWidget):
    show_items = Signal(list, str)  # item ids for the results grid, a title
    label_menu = Signal(list, QPoint)  # item ids to label, where to open the menu
    start_labeling = Signal(list)  # item ids to label one by one
    result_chosen = Signal(object)  # SearchResult of a clicked point (for the preview)
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = None
        self.shown: Shown | None = None  # the map on the canvas
        self.coloured: Coloured | None = None
        self._incoming: Shown | None = None  # a map waiting for its colours
        self._keep_view = False
        self._refresh_pending = False
        self.selection = np.zeros(0, np.int64)  # item ids chosen with the lasso
        self._results: list[int] = []
        self._scores: dict[int, float] = {}
        self._query_vectors: dict[str, np.ndarray] = {}
        self._current_item: int | None = None
        self._hover_cache: dict[int, tuple[QImage | None, str]] = {}
        self._wanted = False  # shown once: from then on it follows the library
        self._map_job = None  # the map job started last: only its cancel is said
        self.map_slot = TaskSlot(self)
        self.colour_slot = TaskSlot(self)
        self.pick_slot = TaskSlot(self)
        self.hover_slot = TaskSlot(self)
        self.info_slot = TaskSlot(self)
        self.resolve_slot = TaskSlot(self)
        self.query_slot = TaskSlot(self)
        self._recolour_timer = QTimer(self, singleShot=True, interval=RECOLOUR_DELAY_MS)
        self._recolour_timer.timeout.connect(self.recolour)
        self._build()
        self._connect()
        self.set_library(None)

    # -- building -----------------------------------------------------------------------

    def _build(self) -> None:
        self.space_box = QComboBox(toolTip="The embedding space whose items the map shows")
        self.space_box.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.space_box.setMinimumContentsLength(10)
        self.method_box = QComboBox(toolTip="How the space is flattened to two dimensions")
        for method in METHODS:
            self.method_box.addItem(METHOD_NAMES[method], method)
        self.compute_button = QPushButton("Compute", toolTip="Fit a fresh layout of this space")
        self.colour_box = QComboBox(toolTip="What colours the points")
        for mode in MODES:
            self.colour_box.addItem(MODE_NAMES[mode], mode)
        self.schema_box = QComboBox(toolTip="The label schema to colour by")
        self.lasso_button = QToolButton(text="Lasso", checkable=True,
                                        toolTip="Draw around points to select them (or "
                                                "Shift+drag in any mode)")
        self.fit_button = QToolButton(text="Fit", toolTip="See every point (Home)")
        top = QHBoxLayout()  # two rows, so a narrow window still fits the panel
        top.addWidget(QLabel("Space"))
        top.addWidget(self.space_box)
        top.addWidget(self.method_box)  # PCA / UMAP say what they are
        top.addWidget(self.compute_button)
        top.addStretch(1)
        second = QHBoxLayout()
        second.addWidget(QLabel("Colour"))
        second.addWidget(self.colour_box)
        second.addWidget(self.schema_box)
        second.addStretch(1)
        second.addWidget(self.lasso_button)
        second.addWidget(self.fit_button)

        self.status = QLabel(wordWrap=True)
        self.progress = QProgressBar(maximumWidth=160, textVisible=False)
        self.cancel_button = QPushButton("Cancel")
        status = QHBoxLayout()
        status.addWidget(self.status, 1)
        status.addWidget(self.progress)
        status.addWidget(self.cancel_button)

        self.canvas = MapCanvas()

        self.selection_label = QLabel()
        self.show_button = QPushButton("Show in results")
        self.label_button = QPushButton("Label…")
        self.start_button = QPushButton("Start labeling")
        self.clear_button = QPushButton("Clear")
        bar = QHBoxLayout()
        bar.addWidget(self.selection_label, 1)
        for button in (self.show_button, self.label_button, self.start_button,
                       self.clear_button):
            bar.addWidget(button)
        self.selection_bar = QWidget()
        self.selection_bar.setLayout(bar)
        bar.setContentsMargins(0, 0, 0, 0)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addLayout(second)
        layout.addLayout(status)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.selection_bar)
        self._show_progress(False)
        self.selection_bar.hide()
        self.schema_box.hide()

    def _connect(self) -> None:
        self.space_box.activated.connect(lambda _: self._load())
        self.method_box.activated.connect(lambda _: self._load())
        self.compute_button.clicked.connect(self.compute)
        self.colour_box.activated.connect(lambda _: self._mode_chosen())
        self.schema_box.activated.connect(lambda _: self.recolour())
        self.lasso_button.toggled.connect(self._lasso_toggled)
        self.fit_button.clicked.connect(self.canvas.fit)
        self.cancel_button.clicked.connect(self.map_slot.cancel)
        self.show_button.clicked.connect(self._show_selection)
        self.label_button.clicked.connect(lambda: self.label_menu.emit(
            self.selection.tolist(), self.label_button.mapToGlobal(
                self.label_button.rect().bottomLeft())))
        self.start_button.clicked.connect(lambda: self.start_labeling.emit(
            self.selection.tolist()))
        self.clear_button.clicked.connect(self.clear_selection)
        self.canvas.clicked.connect(self._clicked)
        self.canvas.hovered.connect(self._hovered)
        self.canvas.lasso_drawn.connect(self._lasso_drawn)
        self.canvas.cleared.connect(self.clear_selection)
        self.canvas.menu_requested.connect(self._menu_requested)
        self.map_slot.result.connect(self._map_ready)
        self.map_slot.failed.connect(self._map_failed)
        self.map_slot.progress.connect(self._map_progress)
        self.map_slot.job_started.connect(self._map_started)
        self.map_slot.job_ended.connect(self._map_ended)
        self.map_slot.idle.connect(self._map_idle)
        self.colour_slot.result.connect(self._coloured)
        self.colour_slot.failed.connect(lambda m: self.message.emit(f"Map colours: {m}"))
        self.pick_slot.result.connect(self._picked)
        self.hover_slot.result.connect(self._hover_ready)
        self.info_slot.result.connect(self._info)
        self.resolve_slot.result.connect(self._resolved)
        self.query_slot.result.connect(self.canvas.set_query)
        QShortcut(QKeySequence("L"), self.canvas, self.lasso_button.toggle).setContext(
            Qt.ShortcutContext.WidgetShortcut)  # PySide6 ignores `context=` next to a slot

    # -- public -------------------------------------------------------------------------

    @property
    def space(self) -> str | None:
        return self.space_box.currentData()

    @property
    def method(self) -> str:
        return self.method_box.currentData()

    @property
    def mode(self) -> str:
        return self.colour_box.currentData()

    def set_library(self, library) -> None:
        # callbacks delivered while the jobs stop (the map slot's idle runs a pending
        # update) must not start more on the library that is closing
        self.library = None
        self._refresh_pending = False
        for slot in (self.map_slot, self.colour_slot, self.pick_slot, self.hover_slot,
                     self.info_slot, self.resolve_slot, self.query_slot):
            slot.shutdown()
        self._map_job = None
        self.library = library
        self._results, self._scores, self._query_vectors = [], {}, {}
        self._hover_cache.clear()
        self._set_shown(None)
        self.space_box.clear()
        self.schema_box.clear()
        self.setEnabled(library is not None)
        self._say("Open a library to see its map." if library is None else "Reading the spaces…")
        self._update_methods()
        if library is not None and self._wanted:
            self._read_spaces()

    def activate(self) -> None:
        """The panel is on screen: from now on it keeps a map of the library."""
        if not self._wanted:
            self._wanted = True
            if self.library is not None:
                self._read_spaces()

    def _read_spaces(self) -> None:
        self.info_slot.start(spaces_and_schemas, self.library, title="map spaces")

    def compute(self) -> None:
        if self.library is None or self.space is None:
            return
        self._show_progress(True)
        self._say(f"Computing the {METHOD_NAMES[self.method]} map of {self.space}…")
        self.map_slot.start(recompute_map, self.library, self.space, self.method,
                            title=f"Map of {self.space} ({METHOD_NAMES[self.method]})")

    def library_updated(self) -> None:
        """Items were added or removed: place the new ones, drop the gone (no refit)."""
        if self.library is None or not self._wanted:
            return
        if self.map_slot.busy or self._incoming is not None:
            self._refresh_pending = True  # once the running job is done
            return
        self._refresh_pending = False
        if self.shown is None:  # no map yet: the spaces may have come (unless being read)
            if not self.info_slot.busy:
                self._read_spaces()
            return
        self.map_slot.start(refresh_map, self.library, self.shown.state.layout,
                            title="Map: placing new items")

    def labels_changed(self) -> None:
        if self.mode in SCHEMA_MODES:
            self._recolour_timer.start()

    def set_outcome(self, outcome) -> None:
        """The current search (or None): its results are emphasised, its query marked."""
        results = outcome.results if outcome is not None else []
        self._results = [r.item_id for r in results]
        self._scores = {r.item_id: r.score for r in results}
        self._query_vectors = dict(outcome.vectors) if outcome is not None and \
            outcome.query is not None else {}
        self._update_emphasis()
        self._place_query()
        if self.mode == "score":
            self.recolour()

    def set_current(self, item_id: int | None) -> None:
        self._current_item = item_id
        self._update_current()

    def clear_selection(self) -> None:
        self._set_selection(np.zeros(0, np.int64))

    def select_items(self, item_ids) -> None:
        self._set_selection(np.asarray(list(item_ids), np.int64))

    def recolour(self) -> None:
        shown = self._incoming or self.shown
        if self.library is None or shown is None:
            return
        mode = self.mode
        schema = self.schema_box.currentText() or None
        self.schema_box.setVisible(mode in SCHEMA_MODES)
        if mode in SCHEMA_MODES and schema is None:
            self.message.emit("No label schema yet (create one in the Labeling panel): "
                              "the map is coloured by modality")
            mode = "modality"
        self.colour_slot.start(colour_map, self.library, shown, mode, schema,
                               dict(self._scores), BACKGROUND, title="Map colours")

    def shutdown(self) -> None:
        self._recolour_timer.stop()
        self.set_library(None)

    # -- jobs' results ------------------------------------------------------------------

    def _info(self, value) -> None:
        spaces, schemas = value
        keep_space, keep_schema = self.space, self.schema_box.currentText()
        self.space_box.clear()
        for space, count in spaces.items():
            self.space_box.addItem(f"{space} ({count:,})", space)
        if keep_space in spaces:
            self.space_box.setCurrentIndex(list(spaces).index(keep_space))
        self.schema_box.clear()
        self.schema_box.addItems(schemas)
        if keep_schema in schemas:
            self.schema_box.setCurrentText(keep_schema)
        if not spaces:
            self._say("Nothing indexed yet: add a folder, and its items appear here.")
            self.canvas.placeholder = "The library has no vectors yet."
            self.canvas.update()
            return
        self._load()

    def _load(self) -> None:
        if self.library is None or self.space is None:
            return
        self._update_methods()
        method = self.method
        blocked = method == "umap" and umap_missing()
        self._show_progress(True)
        self._say(f"Opening the {METHOD_NAMES[method]} map of {self.space}…")
        self.map_slot.start(load_map, self.library, self.space, method,
                            method == "pca" and not blocked,
                            title=f"Map of {self.space} ({METHOD_NAMES[method]})")

    def _map_progress(self, progress) -> None:
        if progress.total:
            self.progress.setRange(0, progress.total)
            self.progress.setValue(progress.done)
        else:
            self.progress.setRange(0, 0)
        if progress.message:
            self._say(progress.message[:1].upper() + progress.message[1:] + "…")

    def _map_ready(self, shown: Shown | None) -> None:
        self._show_progress(False)
        if shown is None:
            self._set_shown(None)
            missing = umap_missing() if self.method == "umap" else None
            self._say(missing or f"No {METHOD_NAMES[self.method]} map of {self.space} yet: "
                      "Compute fits one (UMAP takes minutes on a large library).")
            self.canvas.placeholder = missing or "Press Compute to fit a UMAP map."
            self.canvas.update()
            return
        same = self.shown is not None and self.shown.state.layout.space == \
            shown.state.layout.space and self.shown.state.layout.method == \
            shown.state.layout.method and not shown.state.fitted_now
        # the canvas keeps the map it shows until the new one has its colours
        self._incoming, self._keep_view = shown, same
        state = shown.state
        self._say(_describe(state))
        self.recolour()
        if same and (state.added or state.moved or state.removed):
            self.message.emit(f"Map: {state.added} placed, {state.moved} moved, "
                              f"{state.removed} removed")

    def _map_started(self, job) -> None:
        self._map_job = job

    def _map_ended(self, job, state: str, _value) -> None:
        # Only the job started last is stopped by the person's Cancel (or by closing); a
        # job that a newer one replaced ends "cancelled" too, before or after the newer
        # one is done, and says nothing. (The slot is still busy with a job until its
        # `finished`, so `not busy` on `cancelled` never held: Cancel went unsaid.)
        if state == "cancelled" and job is self._map_job:
            self._map_failed("cancelled")

    def _map_idle(self) -> None:
        if self._refresh_pending:
            self.library_updated()

    def _map_failed(self, message: str) -> None:
        self._show_progress(False)
        self._say(f"The map could not be made: {message}" if message != "cancelled"
                  else "Cancelled." + (" The map shown is the last one." if self.shown else ""))

    def _coloured(self, coloured: Coloured) -> None:
        if coloured.shown is self._incoming:
            self._incoming = None
            self._set_shown(coloured.shown, keep_view=self._keep_view)
            if self._refresh_pending:
                self.library_updated()
        elif coloured.shown is not self.shown:
            return  # the colours of a map that has since been replaced
        self.coloured = coloured
        self.canvas.set_colours(coloured.colours, coloured.faded, coloured.colouring)

    def _picked(self, value) -> None:
        points, ids, rows = value
        if self.shown is not None:
            self._set_selection(ids, rows if points is self.shown.points else None)

    def _hover_ready(self, value) -> None:
        item_id, image, text = value
        if len(self._hover_cache) >= HOVER_CACHE:
            self._hover_cache.pop(next(iter(self._hover_cache)))
        self._hover_cache[item_id] = (image, text)
        row = self.canvas.hover_row
        if row is not None and self.shown is not None and \
                int(self.shown.points.ids[row]) == item_id:
            self.canvas.set_hover_card(image, text)

    def _resolved(self, result) -> None:
        if result is not None:
            self.result_chosen.emit(result)

    # -- canvas events --------------------------------------------------------------------

    def _clicked(self, item_id: int) -> None:
        self.set_current(item_id)
        if self.library is not None:
            self.resolve_slot.start(resolve_item, self.library, item_id, title="map item")

    def _hovered(self, item_id: int | None) -> None:
        if item_id is None or self.library is None:
            return
        if item_id in self._hover_cache:
            self.canvas.set_hover_card(*self._hover_cache[item_id])
        else:
            self.hover_slot.start(hover_item, self.library, item_id, title="map thumbnail")

    def _lasso_drawn(self, polygon: np.ndarray) -> None:
        if self.shown is not None:
            self.pick_slot.start(lasso_rows, self.shown.points, polygon, title="lasso")

    def _menu_requested(self, pos: QPoint) -> None:
        if len(self.selection):
            self.label_menu.emit(self.selection.tolist(), pos)

    def _lasso_toggled(self, on: bool) -> None:
        self.canvas.lasso_mode = on
        self.canvas.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)

    def _mode_chosen(self) -> None:
        self.schema_box.setVisible(self.mode in SCHEMA_MODES)
        self.recolour()

    def _show_selection(self) -> None:
        if len(self.selection):
            self.show_items.emit(self.selection.tolist(), f"{len(self.selection):,} from the map")

    # -- state --------------------------------------------------------------------------

    def _set_shown(self, shown: Shown | None, keep_view: bool = False) -> None:
        self.shown = shown
        self.coloured = None
        if shown is None:
            self._incoming = None
        self.canvas.set_points(shown.points if shown else None, keep_view=keep_view)
        self.compute_button.setText("Recompute" if shown else "Compute")
        self.compute_button.setEnabled(self.library is not None and self.space is not None)
        if shown is None:
            self.canvas.placeholder = "No map yet."
        known = shown.points.ids[shown.points.rows_of(self.selection)] if shown else \
            np.zeros(0, np.int64)
        self._set_selection(known)
        self._place_query()
        self._update_current()

    def _set_selection(self, item_ids: np.ndarray, rows: np.ndarray | None = None) -> None:
        """rows: the ids' rows in the shown points, when known (a lasso's job found them)."""
        self.selection = np.asarray(item_ids, np.int64)
        n = len(self.selection)
        self.selection_bar.setVisible(n > 0)
        self.selection_label.setText(f"{n:,} selected")
        self._update_emphasis(rows)

    def _update_emphasis(self, selected_rows: np.ndarray | None = None) -> None:
        if self.shown is None:
            return
        points = self.shown.points
        if len(self.selection):
            self.canvas.set_emphasis(selected_rows if selected_rows is not None
                                     else points.rows_of(self.selection))
        elif self._results:
            self.canvas.set_emphasis(points.rows_of(self._results[:EMPHASISED_RESULTS]))
        else:
            self.canvas.set_emphasis(None)

    def _update_current(self) -> None:
        if self.shown is None or self._current_item is None:
            self.canvas.set_current(None)
            return
        rows = self.shown.points.rows_of([self._current_item])
        self.canvas.set_current(int(rows[0]) if len(rows) else None)

    def _place_query(self) -> None:
        if self.shown is None:
            self.query_slot.cancel()
            self.canvas.set_query(None)
            return
        layout = self.shown.state.layout
        vector = self._query_vectors.get(layout.space)
        if vector is None or len(vector) != layout.dim:
            self.query_slot.cancel()
            self.canvas.set_query(None)
            return
        self.query_slot.start(place_query, layout, vector, title="map query")

    def _update_methods(self) -> None:
        missing = umap_missing()
        item = self.method_box.model().item(METHODS.index("umap"))
        item.setEnabled(missing is None)
        item.setToolTip(missing or "UMAP keeps neighbourhoods: clusters read better than PCA")

    def _show_progress(self, on: bool) -> None:
        self.progress.setVisible(on)
        self.cancel_button.setVisible(on)

    def _say(self, text: str) -> None:
        self.status.setText(text)


def _describe(state: MapState) -> str:
    layout = state.layout
    text = f"{len(layout):,} items of {layout.space} · {METHOD_NAMES[layout.method]}"
    if layout.placed:
        text += f" · fitted on {layout.fitted:,}, {layout.placed:,} placed since (Recompute " \
                "to fit them in)"
    return text

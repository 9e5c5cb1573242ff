"""The main window: query bar, results grid and map, preview, jobs and errors, status bar."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QScrollArea,
    QStackedLayout,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from mmstudio.core.library import default_library_path
from mmstudio.core.thumbnails import thumbs_dir
from mmstudio.gui.models.errors import ErrorsModel
from mmstudio.gui.models.jobs import JobsModel
from mmstudio.gui.models.results import ModalityFilter, ResultRole, ResultsModel
from mmstudio.gui.session import Session, summary_of_ingest
from mmstudio.gui.style import modality_icon
from mmstudio.gui.views.fusion import FusionPanel
from mmstudio.gui.views.jobs import ErrorsView, JobsPanel
from mmstudio.gui.views.labeling import LabelingPanel
from mmstudio.gui.views.map import MapPanel
from mmstudio.gui.views.preview import PreviewPane
from mmstudio.gui.views.results import ResultsView
from mmstudio.gui.widgets.query_bar import QueryBar, local_paths
from mmstudio.gui.widgets.settings import SettingsDialog

log = logging.getLogger(__name__)

MAX_RECENT = 8
MODALITY_NAMES = {"image": "Images", "video": "Videos", "audio": "Audio", "text": "Text"}


def _scrolled(panel: QWidget) -> QScrollArea:
    """A panel in a scroll area: a small dock scrolls instead of growing the window."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setWidget(panel)
    return area


def app_settings() -> QSettings:
    return QSettings("mmstudio", "mmstudio")


class MainWindow(QMainWindow):
    def __init__(self, library: Path | None = None, *, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or app_settings()
        self.session = Session(self)
        self.setWindowTitle("mmstudio")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.open_url = QDesktopServices.openUrl  # replaced in tests
        thumb_size = int(self.settings.value("thumb_size", 160))

        # models
        self.results = ResultsModel(self)
        self.filtered = ModalityFilter(self)
        self.filtered.setSourceModel(self.results)
        self.jobs = JobsModel(self)
        self.errors = ErrorsModel(self)

        # central: query bar, filter chips, results grid (or a hint when empty)
        self.query_bar = QueryBar()
        self.chips: dict[str, QToolButton] = {}
        chips = QHBoxLayout()
        chips.setSpacing(4)
        for modality, name in MODALITY_NAMES.items():
            chip = QToolButton(checkable=True, checked=True, text=name)
            chip.setIcon(modality_icon(modality))
            chip.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            chip.setToolTip(f"Show or hide {name.lower()} in the results")
            chip.toggled.connect(lambda on, m=modality: self.filtered.set_shown(m, on))
            chips.addWidget(chip)
            self.chips[modality] = chip
        chips.addStretch(1)
        self.result_info = QLabel()
        chips.addWidget(self.result_info)
        self.grid = ResultsView(self.results, thumb_size)
        self.grid.setModel(self.filtered)
        self.hint = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.hint.setStyleSheet("color: palette(placeholder-text); font-size: 15px;")
        self.stack = QStackedLayout()
        self.stack.addWidget(self.hint)
        self.stack.addWidget(self.grid)
        results_page = QWidget()
        results_layout = QVBoxLayout(results_page)
        results_layout.setContentsMargins(0, 0, 0, 0)
        results_layout.addLayout(chips)
        results_layout.addLayout(self.stack, 1)
        self.map = MapPanel()
        self.tabs = QTabWidget(documentMode=True)
        self.tabs.addTab(results_page, "Results")
        self.tabs.addTab(self.map, "Map")
        self.tabs.setTabToolTip(0, "The search results (Ctrl+1)")
        self.tabs.setTabToolTip(1, "Every item of a space on one map (Ctrl+2)")
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.query_bar)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        # docks
        self.preview = PreviewPane()
        self.jobs_panel = JobsPanel(self.jobs)
        self.errors_view = ErrorsView(self.errors)
        self.labeling = LabelingPanel()
        self.fusion = FusionPanel()
        self.preview_dock = self._dock("Preview", self.preview, Qt.DockWidgetArea.RightDockWidgetArea)
        self.labeling_dock = self._dock("Labeling", _scrolled(self.labeling),
                                        Qt.DockWidgetArea.RightDockWidgetArea)
        self.fusion_dock = self._dock("Fusion", _scrolled(self.fusion),
                                      Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.preview_dock, self.labeling_dock)
        self.tabifyDockWidget(self.labeling_dock, self.fusion_dock)
        self.preview_dock.raise_()
        self.jobs_dock = self._dock("Jobs", self.jobs_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.errors_dock = self._dock("Errors", self.errors_view,
                                      Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.jobs_dock, self.errors_dock)
        self.jobs_dock.raise_()

        # status bar
        self.library_label, self.counts_label, self.models_label = QLabel(), QLabel(), QLabel()
        for label in (self.library_label, self.counts_label, self.models_label):
            self.statusBar().addPermanentWidget(label)

        self._build_menus()
        self._build_shortcuts()
        self._connect()
        self._show_hint()
        geometry = self.settings.value("geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1360, 860)
            self.resizeDocks([self.jobs_dock], [170], Qt.Orientation.Vertical)
            self.resizeDocks([self.preview_dock], [440], Qt.Orientation.Horizontal)
        state = self.settings.value("window_state")
        if state is not None:
            self.restoreState(state)
        self._library_to_open = library
        QTimer.singleShot(0, self._start)

    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{title.lower()}Dock")  # saveState needs names
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    # -- wiring ------------------------------------------------------------------------

    def _build_menus(self) -> None:
        file = self.menuBar().addMenu("&File")
        self.action_new = file.addAction("&New library…", self.new_library)
        self.action_open = file.addAction("&Open library…", self.choose_library)
        self.recent_menu = file.addMenu("Open &recent")
        file.addSeparator()
        self.action_add = file.addAction("&Add folder…", self.choose_folder)
        self.action_add.setShortcut(QKeySequence("Ctrl+O"))
        file.addSeparator()
        settings = file.addAction("&Settings…", self.open_settings)
        settings.setShortcut(QKeySequence("Ctrl+,"))
        file.addSeparator()
        quit_action = file.addAction("&Quit", self.close)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        view = self.menuBar().addMenu("&View")
        for dock in (self.preview_dock, self.labeling_dock, self.fusion_dock, self.jobs_dock,
                     self.errors_dock):
            view.addAction(dock.toggleViewAction())
        self.labeling_dock.toggleViewAction().setShortcut(QKeySequence("Ctrl+Shift+L"))
        view.addSeparator()
        view.addAction("&Results", lambda: self.tabs.setCurrentIndex(0)).setShortcut(
            QKeySequence("Ctrl+1"))
        view.addAction("&Map", lambda: self.tabs.setCurrentIndex(1)).setShortcut(
            QKeySequence("Ctrl+2"))
        self._fill_recent()

    def _build_shortcuts(self) -> None:
        for keys in ("Ctrl+L", "/"):
            QShortcut(QKeySequence(keys), self, self.focus_query)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(keys), self, self.find_similar)
        QShortcut(QKeySequence(Qt.Key.Key_Space), self.grid, self.preview.toggle_playback)
        space = QShortcut(QKeySequence(Qt.Key.Key_Space), self.preview,
                          self.preview.toggle_playback)
        space.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)  # not a keyword:
        # PySide6 ignores `context=` next to a slot

    def _connect(self) -> None:
        s = self.session
        self.jobs.watch(s.open_slot)
        self.jobs.watch(s.models_slot, summary=lambda names: f"ready: {', '.join(names)}")
        self.jobs.watch(s.ingest_slot, summary=summary_of_ingest)
        self.jobs.watch(s.query_slot, transient=True)
        self.jobs.watch(self.grid.thumb_slot, transient=True,
                        summary=lambda _: "done")
        self.jobs.job_failed.connect(lambda title, m: self.statusBar().showMessage(
            f"{title} failed: {m}", 10_000))
        bar = self.query_bar
        bar.text_query.connect(s.search_text)
        bar.files_pasted.connect(s.files_dropped)
        bar.image_pasted.connect(s.paste_image)
        bar.record_toggled.connect(s.set_recording)
        bar.cleared.connect(s.clear_query)
        s.ingest_slot.job_started.connect(lambda _: self._show_hint())
        s.library_changed.connect(self._library_changed)
        s.open_failed.connect(self._open_failed)
        s.status_changed.connect(self._status)
        s.models_changed.connect(self.models_label.setText)
        s.query_changed.connect(self._query_changed)
        s.results_changed.connect(self._results_changed)
        s.search_failed.connect(self._search_failed)
        s.selection_changed.connect(self._selection_changed)
        s.errors_found.connect(self._errors_found)
        s.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        s.microphone_checked.connect(bar.set_microphone)
        s.recording.connect(self._recording)
        self.jobs.watch(self.labeling.plan_slot, transient=True)
        self.jobs.watch(self.fusion.train_slot, summary=lambda report: "trained")
        self.labeling.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.fusion.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.fusion.show_items.connect(s.show_items)
        self.labeling.preview.find_similar.connect(s.find_similar)
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.grid.customContextMenuRequested.connect(self._grid_menu)
        self.grid.selectionModel().selectionChanged.connect(lambda *_: self._pools_changed())
        self.grid.current_result_changed.connect(s.select)
        self.grid.result_activated.connect(self.open_result)
        self.preview.find_similar.connect(s.find_similar)
        self.tabs.currentChanged.connect(self._tab_changed)
        m = self.map
        self.jobs.watch(m.map_slot, summary=lambda shown: "done")
        m.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        m.show_items.connect(self._show_map_items)
        m.label_menu.connect(self._items_menu)
        m.start_labeling.connect(self._label_items)
        m.result_chosen.connect(s.select)
        s.status_changed.connect(lambda _: m.library_updated())
        self.labeling.labels_changed.connect(m.labels_changed)
        self.fusion.trained.connect(lambda _: m.labels_changed())

    def _start(self) -> None:
        self.session.check_microphone()
        path = self._library_to_open or self.settings.value("last_library") or default_library_path()
        self.session.open_library(Path(path))

    # -- library -----------------------------------------------------------------------

    def new_library(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "New library: choose an empty folder")
        if folder:
            self.session.open_library(Path(folder), create=True)

    def choose_library(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open library")
        if folder:
            self.session.open_library(Path(folder), create=False)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder to the library")
        if folder:
            self.session.add_folders([Path(folder)])

    def _library_changed(self, library) -> None:
        self.preview.set_library(library)
        self.map.set_library(library)
        self.labeling.set_library(library)
        self.fusion.set_library(library)
        if library is None:
            self.grid.cache_dir = None
            self.library_label.setText("no library")
            self.setWindowTitle("mmstudio")
        else:
            self.grid.cache_dir = thumbs_dir(library.path)
            self.library_label.setText(str(library.path))
            self.setWindowTitle(f"mmstudio — {library.path.name}")
            self.settings.setValue("last_library", str(library.path))
            recent = [str(library.path)] + [p for p in self._recent() if p != str(library.path)]
            self.settings.setValue("recent_libraries", recent[:MAX_RECENT])
            self._fill_recent()
        self._show_hint()

    def _recent(self) -> list[str]:
        value = self.settings.value("recent_libraries") or []
        return [value] if isinstance(value, str) else list(value)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self._recent():
            self.recent_menu.addAction(path, lambda p=path: self.session.open_library(
                Path(p), create=False))
        self.recent_menu.setEnabled(bool(self._recent()))

    def _open_failed(self, message: str) -> None:
        self.library_label.setText("no library")
        self.statusBar().showMessage(message, 15_000)
        box = QMessageBox(QMessageBox.Icon.Warning, "Cannot open the library", message,
                          QMessageBox.StandardButton.Ok, self)
        box.setInformativeText("Open another library, or create a new one, from the File menu.")
        self.open_error = box
        box.open()  # not modal to the app: jobs and the window go on
        self._show_hint()

    def _status(self, counts: dict) -> None:
        by = counts.get("files_by_modality", {})
        parts = [f"{by[m]} {m}" for m in MODALITY_NAMES if by.get(m)]
        self.counts_label.setText(f"{counts.get('items', 0)} items" +
                                  (f" ({', '.join(parts)})" if parts else ""))
        self._show_hint()

    def _errors_found(self, errors: list, job: str) -> None:
        if errors:
            self.errors.add([(str(p), r) for p, r in errors], job)
            self.errors_dock.setWindowTitle(f"Errors ({self.errors.rowCount()})")

    # -- queries and results -----------------------------------------------------------

    def focus_query(self) -> None:
        self.query_bar.edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.query_bar.edit.selectAll()

    def _query_changed(self, query) -> None:
        if query is None:
            self.query_bar.chip.hide()
            return
        modality, label = query
        self.query_bar.show_query(modality, str(label))
        if modality != "text":
            self.query_bar.edit.clear()
        self.result_info.setText("searching…")

    def _results_changed(self, outcome) -> None:
        results = outcome.results if outcome is not None else []
        self.results.set_results(results)
        counts = {m: 0 for m in MODALITY_NAMES}
        for r in results:
            counts[r.modality] = counts.get(r.modality, 0) + 1
        for modality, chip in self.chips.items():
            chip.setText(f"{MODALITY_NAMES[modality]} {counts.get(modality, 0)}"
                         if outcome is not None else MODALITY_NAMES[modality])
        self.result_info.setText(f"{len(results)} results · {outcome.seconds * 1000:.0f} ms"
                                 if outcome is not None else "")
        self.map.set_outcome(outcome)
        if results and self.filtered.rowCount():
            self.grid.setCurrentIndex(self.filtered.index(0, 0))
        self._pools_changed()
        self._show_hint()

    def _search_failed(self, message: str) -> None:
        self.result_info.setText("")
        self.statusBar().showMessage(f"Search failed: {message}", 15_000)
        self.results.set_results([])
        self._show_hint(f"The search failed: {message}")

    def _selection_changed(self, result) -> None:
        self.map.set_current(result.item_id if result is not None else None)
        outcome = self.session.outcome
        if outcome is None:
            self.preview.show_result(result)
        else:
            self.preview.show_result(result, outcome.vectors, outcome.query)

    # -- labels ------------------------------------------------------------------------

    def selected_items(self) -> list[int]:
        """Item ids of the selected result cards, in grid order."""
        rows = sorted(self.grid.selectionModel().selectedIndexes(), key=lambda i: i.row())
        return list(dict.fromkeys(i.data(ResultRole).item_id for i in rows))

    def _result_items(self) -> list[int]:
        return list(dict.fromkeys(r.item_id for r in self.results.results))

    def _pools_changed(self) -> None:
        self.labeling.set_pools(self._result_items(), self.selected_items())

    def _grid_menu(self, pos) -> None:
        self._items_menu(self.selected_items(), self.grid.viewport().mapToGlobal(pos))

    def _items_menu(self, items: list[int], where) -> None:
        """Label these items (the grid's selection, or the map's lasso) or start labeling."""
        schema = self.labeling.schema
        if not items:
            return
        menu = QMenu(self)
        if schema is None:
            menu.addAction("Create a label schema in the Labeling panel first").setEnabled(False)
        else:
            sub = menu.addMenu(f"Label {len(items)} selected ({schema.name})")
            for d in schema.labels:
                action = sub.addAction(f"{d.name}\t{d.key or ''}")
                action.triggered.connect(lambda _=False, n=d.name: self.labeling.bulk(items, n))
        menu.addAction(f"Start labeling these {len(items)}", lambda: self._label_items(items))
        self.grid_menu = menu  # tests reach it here
        menu.popup(where)

    def _label_items(self, items: list[int]) -> None:
        self.labeling.set_pools(self._result_items(), list(items))
        self.labeling_dock.show()
        self.labeling_dock.raise_()
        self.labeling.start("selection")

    def _show_map_items(self, items: list[int], title: str) -> None:
        self.session.show_items(items, title)
        self.tabs.setCurrentIndex(0)

    def _tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.map:
            self.map.activate()
            self.map.canvas.setFocus()

    def find_similar(self) -> None:
        self.session.find_similar(self.session.selected)

    def open_result(self, result) -> None:
        if result is not None:
            self.open_url(QUrl.fromLocalFile(result.path))

    def _recording(self, on: bool) -> None:
        bar = self.query_bar.mic
        bar.blockSignals(True)
        bar.setChecked(on)
        bar.blockSignals(False)
        bar.setText("■ Stop" if on else "● Record")

    def _show_hint(self, text: str | None = None) -> None:
        if text is None:
            if self.session.library is None:
                text = "Opening the library…" if self.session.open_slot.busy else \
                    "No library open. Use File ▸ New library or Open library."
            elif not self.session.counts.get("items") and self.session.ingest_slot.busy:
                text = ("Adding files to the library (see Jobs below).\nYou can search as "
                        "soon as the job ends.")
            elif not self.session.counts.get("items"):
                text = ("This library is empty.\nDrop a folder here, or use File ▸ Add folder… "
                        "(Ctrl+O), to add pictures, sounds, videos and texts.")
            elif self.session.query is None:
                text = ("Type words, drop a file on the search bar, or paste a picture "
                        "(Ctrl+V) to search.")
            elif self.session.outcome is not None and not self.session.outcome.results:
                text = "Nothing found."
        if text:
            self.hint.setText(text)
            self.stack.setCurrentWidget(self.hint)
        else:
            self.stack.setCurrentWidget(self.grid)

    # -- settings ----------------------------------------------------------------------

    def open_settings(self) -> None:
        library = self.session.library
        dialog = SettingsDialog(
            list(library.settings.profiles) if library else ["starter"],
            library.settings.device if library else "auto",
            str(library.path) if library else "(none)",
            self.grid.delegate.thumb_size, self,
        )
        dialog.finished.connect(lambda code: self._settings_done(dialog, code))
        dialog.open()

    def _settings_done(self, dialog: SettingsDialog, code: int) -> None:
        if dialog.library_change_requested:
            self.choose_library()
            return
        if code != SettingsDialog.DialogCode.Accepted:
            return
        self.session.apply_settings(dialog.profiles(), dialog.device.currentText())
        size = dialog.thumb_size.value()
        if size != self.grid.delegate.thumb_size:
            self.settings.setValue("thumb_size", size)
            self.grid.set_thumb_size(size)

    # -- drops and closing -------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:
        if local_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        if paths := local_paths(event.mimeData()):
            event.acceptProposedAction()
            self.session.files_dropped(paths)

    def closeEvent(self, event) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.grid.shutdown()
        self.preview.shutdown()
        self.labeling.shutdown()
        self.fusion.shutdown()
        self.map.shutdown()
        self.session.shutdown()
        super().closeEvent(event)

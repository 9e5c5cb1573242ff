"""`make screenshots`: the window on generated media, offscreen, saved as PNGs.

python -m tests.screenshots OUT_DIR writes main-window.png (a text search with
results), relevance-preview.png (a picture it found, with the relevance map over it),
video-preview.png (a picture query whose match is a video moment, the player at that
moment), jobs-mid-ingest.png (a folder being added), labeling-session.png (a labeling
session under way), fusion-panel.png (fusion classifiers trained on those labels),
embedding-map.png (the map tab: a space's UMAP coloured by predicted label, a search's
best results and its query on it, a hover card) and map-million-points.png (the map canvas at 1,000,000
points).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPoint, QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from mmstudio.core.samples import draw, make_sample_library  # noqa: E402
from mmstudio.gui.models.results import ResultRole  # noqa: E402
from tests.gui.stall import many_items  # noqa: E402
from tests.gui.stall import wait_until as wait  # noqa: E402

SIZE = (1440, 900)


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication([])
    app.setStyle("Fusion")
    from mmstudio.gui.main_window import MainWindow

    with tempfile.TemporaryDirectory(prefix="mmstudio-shots-") as tmp:
        work = Path(tmp)
        media = make_sample_library(work / "sample-media", images_per_pattern=3)
        many_items(media / "notes-and-more", 600)
        window = MainWindow(work / "library", settings=QSettings(str(work / "s.ini"),
                                                                QSettings.Format.IniFormat))
        window.resize(*SIZE)
        window.show()
        session = window.session

        def settle(seconds: float = 0.5) -> None:
            end = time.monotonic() + seconds
            wait(lambda: time.monotonic() >= end)

        def shoot(name: str, wait_s: float = 0.5) -> None:
            settle(wait_s)
            path = out / name
            window.grab().save(str(path))
            print(f"wrote {path}")

        wait(lambda: session.library is not None and not session.models_slot.busy)
        session.add_folders([media])
        wait(lambda: bool(window.jobs.entries) and window.jobs.entries[0].title.startswith("Adding")
             and window.jobs.entries[0].progress.total > 0
             and window.jobs.entries[0].progress.done >= window.jobs.entries[0].progress.total // 3)
        window.jobs_dock.raise_()
        shoot("jobs-mid-ingest.png", 0.05)
        wait(lambda: not session.ingest_slot.busy and not session.status_slot.busy)

        window.query_bar.edit.setText("kittens playing with string")
        window.query_bar._submit()
        wait(lambda: session.outcome is not None and not session.search_slot.busy)
        settle(0.3)
        wait(lambda: not window.grid.thumb_slot.busy)
        shoot("main-window.png")

        model = window.grid.model()
        row = next(r for r in range(model.rowCount())
                   if model.index(r, 0).data(ResultRole).modality == "image")
        window.grid.setCurrentIndex(model.index(row, 0))
        wait(lambda: window.preview.relevance.shown is not None)
        shoot("relevance-preview.png")

        query = work / "circles.png"
        draw("circles", 256, 1).save(query)  # the video's second scene, 2 s to 4 s
        session.files_dropped([query])
        wait(lambda: not session.search_slot.busy and session.outcome is not None
             and session.outcome.query.path == query)
        model = window.grid.model()
        row = next(r for r in range(model.rowCount())
                   if model.index(r, 0).data(ResultRole).modality == "video")
        window.grid.setCurrentIndex(model.index(row, 0))
        result = session.selected
        player = window.preview.player
        wait(lambda: player is not None and abs(player.position() - result.start * 1000) < 300)
        wait(lambda: not window.grid.thumb_slot.busy)
        settle(1.0)
        shoot("video-preview.png")

        # a labeling session: pictures labeled by pattern, then a fusion report on them
        from mmstudio.core.samples import PATTERNS
        from mmstudio.labels import Schema

        library = session.library
        library.labels.save_schema(Schema.of("pattern", list(PATTERNS)))
        files = library.catalog.item_files()
        pictures = {i: Path(fs[0][0]).stem.split("-")[0] for i, fs in files.items()
                    if fs[0][1] == "image" and Path(fs[0][0]).stem.split("-")[0] in PATTERNS}
        library.labels.set_labels("pattern", {i: [p] for i, p in list(pictures.items())[::2]})
        window.labeling_dock.show()
        window.labeling_dock.raise_()
        window.labeling.set_library(library)  # re-reads the schemas
        wait(lambda: window.labeling.schema is not None)
        window.labeling.start("library", "active")
        wait(lambda: window.labeling.current_item is not None and not window.labeling.plan_slot.busy)
        for key in ("1", "2"):
            window.labeling.assign_key(key)
        wait(lambda: not window.labeling.writer.busy)
        shoot("labeling-session.png", 1.0)

        keyed = {i: [] for i in library.labels.labels("pattern") if i not in pictures}
        library.labels.set_labels("pattern", {**keyed, **{i: [p] for i, p in pictures.items()}})
        window.fusion_dock.show()
        window.fusion_dock.raise_()
        window.resizeDocks([window.fusion_dock], [780], Qt.Orientation.Horizontal)
        window.fusion.refresh()
        wait(lambda: window.fusion.schema == "pattern")
        window.fusion.folds.setValue(3)
        window.fusion.train()
        wait(lambda: window.fusion.report is not None and not window.fusion.train_slot.busy,
             timeout=300)
        window.fusion.select_method("early")
        shoot("fusion-panel.png", 1.0)

        # the UMAP map of the starter space, coloured by the fusion model's predictions,
        # with a search's best results and its query (the star)
        window.resizeDocks([window.fusion_dock], [440], Qt.Orientation.Horizontal)
        window.preview_dock.raise_()
        window.tabs.setCurrentWidget(window.map)
        m = window.map
        wait(lambda: m.coloured is not None and m.space_box.count() > 0)
        m.space_box.setCurrentIndex(m.space_box.findData("starter"))
        m.space_box.activated.emit(m.space_box.currentIndex())
        wait(lambda: m.shown is not None and m.shown.state.layout.space == "starter"
             and m.coloured is not None and len(m.coloured.colours) == len(m.shown.points))
        m.method_box.setCurrentIndex(m.method_box.findData("umap"))
        m.compute()
        wait(lambda: m.shown is not None and m.shown.state.layout.method == "umap"
             and m.coloured is not None, timeout=600)
        m.colour_box.setCurrentIndex(m.colour_box.findData("predicted"))
        m.colour_box.activated.emit(m.colour_box.currentIndex())
        m.coloured = None
        wait(lambda: m.coloured is not None)
        window.query_bar.edit.setText("rings and circles")
        window.query_bar._submit()
        wait(lambda: session.outcome is not None and not session.search_slot.busy
             and session.outcome.query is not None and session.outcome.query.text is not None)
        best = session.outcome.results[5].item_id
        rows = m.shown.points.rows_of([best])
        px, py = m.canvas.view.to_screen(m.shown.points.x[rows[0]], m.shown.points.y[rows[0]])
        QTest.mouseMove(m.canvas, QPoint(int(px), int(py)))
        wait(lambda: m.canvas._hover_card is not None)
        shoot("embedding-map.png", 0.5)
        window.close()
        shoot_million(out)
    return 0


def shoot_million(out: Path) -> None:
    """The canvas alone with the map benchmark's 1,000,000 generated points."""
    import numpy as np

    from mmstudio.gui.widgets.map_canvas import MapCanvas
    from mmstudio.labels.schema import PALETTE
    from mmstudio.maps.colours import Category, Colouring, rgb_of
    from mmstudio.maps.geometry import PointSet
    from mmstudio.maps.raster import argb
    from tests.bench.map import layout_points

    xy, category = layout_points(1_000_000)
    points = PointSet(np.arange(len(xy)), xy)
    palette = np.array([rgb_of(PALETTE[c]) for c in range(10)], np.uint8)
    rgb = np.empty((len(xy), 3), np.uint8)
    rgb[points.rows_of(np.arange(len(xy)))] = palette[category]
    counts = np.bincount(category, minlength=10)
    legend = Colouring("label", rgb, tuple(Category(f"class {c}", PALETTE[c], int(counts[c]))
                                           for c in range(10)), title="1,000,000 points")
    canvas = MapCanvas()
    canvas.resize(1280, 800)
    canvas.show()
    canvas.set_points(points)
    canvas.set_colours(argb(rgb), argb((rgb * 0.25 + 20).astype(np.uint8)), legend)
    path = out / "map-million-points.png"
    canvas.grab().save(str(path))
    canvas.close()
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/screenshots")))

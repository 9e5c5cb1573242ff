"""GUI tests: offscreen Qt, no pool task may outlive a test, and shared windows."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402

from mmstudio.core.ingest import index  # noqa: E402
from mmstudio.core.library import Library  # noqa: E402
from mmstudio.gui.main_window import MainWindow  # noqa: E402
from mmstudio.labels import Schema  # noqa: E402
from tests.fakes import FakeEncoder  # noqa: E402
from tests.media_factory import good_collection  # noqa: E402

WAIT = 30_000


@pytest.fixture(autouse=True)
def _no_leftover_tasks(qapp):
    from PySide6.QtCore import QThreadPool

    yield
    pool = QThreadPool.globalInstance()
    assert pool.waitForDone(10_000), "a job was still running 10 s after the test ended"
    assert pool.activeThreadCount() == 0


def open_pane(qtbot, library, height: int):
    """A shown PreviewPane on `library`, for a fixture to yield and then shut down."""
    from mmstudio.gui.views.preview import PreviewPane

    pane = PreviewPane()
    qtbot.addWidget(pane)
    pane.resize(720, height)
    pane.show()
    pane.set_library(library)
    return pane


@pytest.fixture
def labels_window(qtbot, tmp_path):
    """A shown main window on an indexed good collection with a "kind" label schema:
    (window, {file stem: item id}, files)."""
    files = good_collection(tmp_path / "media")
    with Library(tmp_path / "lib") as lib:
        index(lib, [tmp_path / "media"], encoders=[FakeEncoder()])
        lib.labels.save_schema(Schema.of("kind", ["picture", "words", "sound"]))
        ids = {Path(p).stem: i for i, fs in lib.catalog.item_files().items() for p, _ in fs}
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(tmp_path / "lib", settings=settings)
    w.labeling.zero_shot = False  # no model loads in these tests
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.session.library is not None, timeout=WAIT)
    qtbot.waitUntil(lambda: w.labeling.schema is not None, timeout=WAIT)
    yield w, ids, files
    w.close()

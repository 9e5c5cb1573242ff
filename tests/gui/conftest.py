"""GUI tests: offscreen Qt, no pool task may outlive a test, shared windows, and gates.

No test depends on timing: a test that needs a job to be running when something
happens holds the job at a `Gate` (installed by monkeypatching the job's function, or a
function it calls) and opens it when it is ready; it never sleeps and hopes.
"""

import os
import threading
import time

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


class Gate:
    """Where a job waits for the test.

    The job calls `wait()` from a function the test monkeypatched in: `entered` is set
    (the job is provably running, held there) and the job blocks until the test calls
    `open()`. Given the job's `cancel` token, a cancel lets it go on too (into the
    real function, which stops at its next check), so closing a panel never waits on a
    held job. A gate a failed test left shut is opened once the test ends (then its job
    can finish and the check below passes); past `limit_s` the held job fails.
    """

    made: list = []  # this test's gates

    def __init__(self, limit_s: float = 120.0) -> None:
        self.entered = threading.Event()
        self._open = threading.Event()
        self.limit_s = limit_s
        Gate.made.append(self)

    def open(self) -> None:
        self._open.set()

    def wait(self, cancel=None) -> None:
        self.entered.set()
        deadline = time.monotonic() + self.limit_s
        while not self._open.wait(0.005):
            if cancel is not None and cancel.cancelled:
                return
            if time.monotonic() > deadline:  # the job fails: never let go as if opened
                raise TimeoutError(f"a test left its gate shut for {self.limit_s:.0f} s")


@pytest.fixture(autouse=True)
def _no_leftover_tasks(qapp):
    from PySide6.QtCore import QThreadPool

    yield
    for gate in Gate.made:  # a failed test's held jobs go on, and end
        gate.open()
    Gate.made.clear()
    pool = QThreadPool.globalInstance()
    assert pool.waitForDone(10_000), "a job was still running 10 s after the test ended"
    assert pool.activeThreadCount() == 0


@pytest.fixture
def two_pool_threads(qapp):
    """Room in the pool for a held job and another beside it: a machine with one core
    (or a test run under `taskset -c 0`) has a pool of one thread, where the second would
    only queue behind the first."""
    from PySide6.QtCore import QThreadPool

    pool = QThreadPool.globalInstance()
    before = pool.maxThreadCount()
    pool.setMaxThreadCount(max(before, 2))
    yield
    pool.setMaxThreadCount(before)


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

"""GUI tests: offscreen Qt, and no pool task may outlive a test."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


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

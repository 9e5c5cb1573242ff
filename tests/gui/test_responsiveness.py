"""The window stays responsive while it ingests and searches: the GUI thread never
does a job's work; and it starts light.

How long the GUI thread stalls is a figure, not a test: `make bench` (gui) measures it
with tests.gui.stall.StallProbe on a quiet machine. Here, where the suite may share two
cores with anything, the test asserts the cause of a freeze instead: no decoding,
encoding, disk walk, hashing, thumbnail or vector-store call on the GUI thread.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from PySide6.QtCore import QSettings

from mmstudio.core import ingest, media, scan, search, thumbnails
from mmstudio.gui.main_window import MainWindow
from mmstudio.store.edge import EdgeStore
from tests.gui.stall import many_items

#: the work a job does, where it is done: {owner: names}
HEAVY = {
    media: ["decode"],
    scan: ["scan", "file_hash"],
    ingest: ["plan", "file_hash"],
    ingest._Pipeline: ["_encode", "_commit"],
    search: ["encode_query", "search"],
    thumbnails: ["_make"],
    EdgeStore: ["upsert", "flush", "optimize", "search", "vectors", "delete_files"],
}


@pytest.fixture
def heavy_calls(monkeypatch):
    """{name: [True for each call on the GUI thread, False for each elsewhere]}"""
    calls: dict[str, list[bool]] = {}

    def watched(name, real):
        def call(*args, **kwargs):
            calls.setdefault(name, []).append(
                threading.current_thread() is threading.main_thread())
            return real(*args, **kwargs)
        return call

    for owner, names in HEAVY.items():
        for name in names:
            label = f"{getattr(owner, '__name__', owner)}.{name}"
            monkeypatch.setattr(owner, name, watched(label, getattr(owner, name)))
    return calls


def test_ingesting_and_searching_leave_the_gui_thread_free(qtbot, tmp_path, heavy_calls):
    folder = many_items(tmp_path / "many", 120)
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    window = MainWindow(tmp_path / "library", settings=settings)
    qtbot.addWidget(window)
    window.show()
    session = window.session
    qtbot.waitUntil(lambda: session.library is not None and not session.models_slot.busy,
                    timeout=60_000)
    session.add_folders([folder])
    qtbot.waitUntil(lambda: not session.ingest_slot.busy and not session.status_slot.busy,
                    timeout=120_000)
    assert session.counts["items"] == 120
    session.search_text("a red circle")
    qtbot.waitUntil(lambda: session.outcome is not None and not session.search_slot.busy,
                    timeout=60_000)
    assert session.outcome.results
    window.close()
    # the watch saw the work (each of these ran), and none of it on the GUI thread
    for name in ("mmstudio.core.media.decode", "mmstudio.core.ingest.plan", "_Pipeline._encode",
                 "EdgeStore.upsert", "mmstudio.core.search.encode_query", "EdgeStore.search"):
        assert heavy_calls.get(name), f"{name} never ran: the watch is not where the work is"
    on_gui = sorted(name for name, threads in heavy_calls.items() if any(threads))
    assert on_gui == [], f"done on the GUI thread: {on_gui}"


COLD_START = """
import json, os, sys, time
t0 = time.perf_counter()
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
app = QApplication([])
from mmstudio.gui.main_window import MainWindow
w = MainWindow(sys.argv[1], settings=QSettings(sys.argv[2], QSettings.Format.IniFormat))
w.show()
while not w.isVisible() or not w.windowHandle().isExposed():
    app.processEvents()
visible = time.perf_counter() - t0
heavy = sorted(m for m in ("torch", "transformers", "cv2", "av") if m in sys.modules)
w.close()
print(json.dumps({"seconds": visible, "heavy": heavy}))
"""


def test_the_window_opens_without_loading_models(tmp_path):
    env_run = subprocess.run(
        [sys.executable, "-c", COLD_START, str(tmp_path / "library"), str(tmp_path / "s.ini")],
        capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert env_run.returncode == 0, env_run.stderr[-2000:]
    report = json.loads(env_run.stdout.strip().splitlines()[-1])
    print(f"\ncold start to a visible window: {report['seconds'] * 1000:.0f} ms")
    assert report["heavy"] == []  # no model, no video decoder on the way to the window

"""`mmstudio` with no arguments: the desktop window."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def run(library: Path | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from mmstudio import __version__
    from mmstudio.gui.main_window import MainWindow

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("mmstudio")
    app.setOrganizationName("mmstudio")
    app.setApplicationVersion(__version__)
    app.setStyle("Fusion")  # the same look on every desktop, and readable progress bars
    window = MainWindow(library)
    window.show()
    return app.exec()

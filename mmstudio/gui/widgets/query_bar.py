"""The query bar: type (search as you pause), drop a file, paste, or record.

Event handlers only turn input into signals; the session decides what a dropped
file or a pasted picture becomes.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QImage, QKeySequence
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QLineEdit, QToolButton, QWidget

from mmstudio.gui.style import modality_icon

PAUSE_MS = 350  # typing pause before a search starts


def local_paths(mime: QMimeData) -> list[Path]:
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


class QueryEdit(QLineEdit):
    """A line edit that hands pasted pictures and files to its bar."""

    image_pasted = Signal(QImage)
    files_pasted = Signal(list)

    def keyPressEvent(self, event) -> None:
        if event.matches(QKeySequence.StandardKey.Paste) and self._paste_media():
            return
        super().keyPressEvent(event)

    def _paste_media(self) -> bool:
        mime = QGuiApplication.clipboard().mimeData()
        if mime is None:
            return False
        if paths := local_paths(mime):
            self.files_pasted.emit(paths)
            return True
        if mime.hasImage():
            image = QImage(mime.imageData())
            if not image.isNull():
                self.image_pasted.emit(image)
                return True
        return False  # text: the line edit pastes it, and the pause timer searches


class QueryChip(QFrame):
    """The current query: its modality and what it is, with a button to clear it."""

    cleared = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("queryChip")
        self.setStyleSheet("#queryChip { border: 1px solid palette(mid); border-radius: 11px;"
                           " background: palette(alternate-base); }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 1, 2, 1)
        layout.setSpacing(4)
        self.icon = QLabel()
        self.text = QLabel()
        self.text.setMaximumWidth(260)
        self.close = QToolButton(text="✕", autoRaise=True)
        self.close.setToolTip("Clear the query (Esc)")
        self.close.clicked.connect(self.cleared)
        for w in (self.icon, self.text, self.close):
            layout.addWidget(w)
        self.modality = ""
        self.hide()

    def show_query(self, modality: str, label: str) -> None:
        self.modality = modality
        self.icon.setPixmap(modality_icon(modality, 16).pixmap(QSize(16, 16)))
        metrics = self.text.fontMetrics()
        self.text.setText(metrics.elidedText(f"{modality}: {label}", Qt.TextElideMode.ElideMiddle, 250))
        self.setToolTip(f"{modality} query: {label}")
        self.show()


class QueryBar(QWidget):
    text_query = Signal(str)
    files_pasted = Signal(list)  # [Path]: a file becomes the query, a folder is added
    image_pasted = Signal(QImage)
    record_toggled = Signal(bool)
    cleared = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.chip = QueryChip()
        self.edit = QueryEdit()
        self.edit.setPlaceholderText("Search: type words, drop a file, paste a picture (Ctrl+V)…")
        self.edit.setClearButtonEnabled(True)
        self.edit.setMinimumWidth(280)
        # a file dropped here goes on to the window, which makes it the query
        self.edit.setAcceptDrops(False)
        self.mic = QToolButton(text="● Record", checkable=True)
        layout.addWidget(self.chip)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.mic)
        self._pause = QTimer(self, singleShot=True, interval=PAUSE_MS)
        self._pause.timeout.connect(self._submit)
        self.edit.textEdited.connect(self._typed)
        self.edit.returnPressed.connect(self._submit)
        self.edit.image_pasted.connect(self.image_pasted)
        self.edit.files_pasted.connect(self.files_pasted)
        self.chip.cleared.connect(self.clear)
        self.mic.toggled.connect(self.record_toggled)
        self.set_microphone(None)

    def set_microphone(self, unavailable: str | None) -> None:
        """Enable recording, or disable it with the reason as its tooltip."""
        self.mic.setEnabled(unavailable is None)
        self.mic.setToolTip("Record a sound to search with (click again to stop)"
                            if unavailable is None else f"Recording is unavailable: {unavailable}")

    def show_query(self, modality: str, label: str) -> None:
        self.chip.show_query(modality, label)

    def clear(self) -> None:
        self._pause.stop()
        self.edit.clear()
        self.chip.hide()
        self.cleared.emit()

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Escape and (self.edit.text() or self.chip.isVisible()):
            self.clear()
            return
        super().keyPressEvent(event)

    def _typed(self, text: str) -> None:
        if text.strip():
            self._pause.start()
        else:
            self.clear()

    def _submit(self) -> None:
        self._pause.stop()
        if text := self.edit.text().strip():
            self.text_query.emit(text)

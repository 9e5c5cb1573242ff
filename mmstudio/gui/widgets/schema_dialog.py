"""Create or edit a label schema: its name, its labels (one per line), colours, multi-label.

The dialog checks what `Schema` checks and shows the reason inline; saving is the
panel's job (it writes to the catalog on its writer thread), so the dialog stays open
with the store's objection (a label still in use, say) until the save succeeded.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QVBoxLayout,
)

from mmstudio.labels.schema import KEYS, PALETTE, LabelDef, Schema, SchemaError


def swatch(colour: str, size: int = 14) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(colour))
    return QIcon(pixmap)


class SchemaDialog(QDialog):
    """`submitted` carries a valid Schema; the owner saves it, then calls `finish()`
    (or `show_error(message)` to keep the dialog open)."""

    submitted = Signal(object)  # Schema

    def __init__(self, schema: Schema | None = None, taken: Iterable[str] = (),
                 parent=None) -> None:
        super().__init__(parent)
        self.editing = schema
        self.taken = set(taken) - ({schema.name} if schema else set())
        self.colours: dict[str, str] = {d.name: d.colour for d in schema.labels} if schema else {}
        self.setWindowTitle(f"Edit schema {schema.name}" if schema else "New label schema")

        self.name = QLineEdit(schema.name if schema else "")
        self.name.setPlaceholderText("e.g. animals")
        self.name.setReadOnly(schema is not None)  # the catalog keys labels by schema name
        self.labels_edit = QPlainTextEdit("\n".join(schema.names) if schema else "")
        self.labels_edit.setPlaceholderText("cat\ndog\nbird")
        self.labels_edit.setTabChangesFocus(True)
        self.chips = QListWidget()
        self.chips.setToolTip("Double-click a label to choose its colour")
        self.chips.itemActivated.connect(lambda item: self.choose_colour(item.data(Qt.ItemDataRole.UserRole)))
        self.multi = QCheckBox("Several labels per item (multi-label)")
        self.multi.setChecked(bool(schema and schema.multi))
        self.error = QLabel(wordWrap=True)
        self.error.setStyleSheet("color: #c0392b;")
        self.error.hide()
        self._colour_dialog: QColorDialog | None = None

        form = QFormLayout()
        form.addRow("Name", self.name)
        lists = QHBoxLayout()
        lists.addWidget(self.labels_edit, 3)
        lists.addWidget(self.chips, 2)
        form.addRow(QLabel("Labels, one per line (the first nine get keys 1–9);\n"
                           "double-click one on the right to change its colour"))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.submit)
        buttons.rejected.connect(self.reject)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(lists, 1)
        layout.addWidget(self.multi)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.labels_edit.textChanged.connect(self._refresh)
        self.name.textChanged.connect(lambda _: self.error.hide())
        self.resize(460, 380)
        self._refresh()

    # -- the schema ---------------------------------------------------------------------

    def label_names(self) -> list[str]:
        return [line.strip() for line in self.labels_edit.toPlainText().splitlines()
                if line.strip()]

    def set_labels(self, names: Iterable[str]) -> None:
        self.labels_edit.setPlainText("\n".join(names))

    def schema(self) -> Schema:
        """The schema as entered (SchemaError says what is wrong)."""
        name = self.name.text().strip()
        if name in self.taken:
            raise SchemaError(f"a schema named {name!r} exists already: choose it and use Edit…")
        defs = tuple(LabelDef(n, self._colour_of(n), KEYS[i] if i < len(KEYS) else None)
                     for i, n in enumerate(self.label_names()))
        return Schema(name, defs, self.multi.isChecked())

    def submit(self) -> None:
        """OK: a valid schema is submitted for saving; else the reason shows inline."""
        try:
            schema = self.schema()
        except SchemaError as exc:
            self.show_error(str(exc))
            return
        self.error.hide()
        self.ok_button.setEnabled(False)  # until the save has answered
        self.submitted.emit(schema)

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()
        self.ok_button.setEnabled(True)

    def finish(self) -> None:
        """The schema was saved: close."""
        super().accept()

    def accept(self) -> None:  # Enter in the dialog: the same as OK
        self.submit()

    # -- colours ------------------------------------------------------------------------

    def set_colour(self, label: str, colour: str) -> None:
        self.colours[label] = QColor(colour).name()
        self._refresh()

    def choose_colour(self, label: str) -> None:
        dialog = QColorDialog(QColor(self._colour_of(label)), self)
        dialog.setWindowTitle(f"Colour of {label}")
        dialog.colorSelected.connect(lambda c: self.set_colour(label, c.name()))
        self._colour_dialog = dialog  # kept: open() does not block
        dialog.open()

    def _colour_of(self, label: str) -> str:
        if label not in self.colours:  # the first palette colour no other label has
            used = {self.colours.get(n) for n in self.label_names() if n != label}
            free = [c for c in PALETTE if c not in used]
            self.colours[label] = free[0] if free else PALETTE[len(used) % len(PALETTE)]
        return self.colours[label]

    def _refresh(self) -> None:
        self.error.hide()
        self.chips.clear()
        for i, name in enumerate(self.label_names()):
            key = KEYS[i] if i < len(KEYS) else " "
            item = QListWidgetItem(swatch(self._colour_of(name)), f"{key}  {name}")
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.chips.addItem(item)

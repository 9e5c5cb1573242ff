"""Per-file errors of every job: the file and the reason, one row each."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt

COLUMNS = ("File", "Reason", "Job")


class ErrorsModel(QAbstractTableModel):
    """The newest error of each file (a file that fails again replaces its row)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[tuple[str, str, str]] = []

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self.rows[index.row()][index.column()]
        return None

    def add(self, errors: list[tuple[str, str]], job: str) -> None:
        """Add (path, reason) pairs found by `job`."""
        if not errors:
            return
        fresh = {path: (path, reason, job) for path, reason in errors}
        self.beginResetModel()
        self.rows = [r for r in self.rows if r[0] not in fresh] + sorted(fresh.values())
        self.endResetModel()

    def forget(self, paths: set[str]) -> None:
        """Files that were read well since: their old error goes."""
        kept = [r for r in self.rows if r[0] not in paths]
        if len(kept) != len(self.rows):
            self.beginResetModel()
            self.rows = kept
            self.endResetModel()

    def clear(self) -> None:
        self.beginResetModel()
        self.rows = []
        self.endResetModel()

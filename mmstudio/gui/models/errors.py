"""Per-file errors of every job: the file and the reason, one row each."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt

from mmstudio.gui.models.table import FlatTableModel


class ErrorsModel(FlatTableModel):
    """The newest error of each file (a file that fails again replaces its row)."""

    COLUMNS = ("File", "Reason", "Job")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[tuple[str, str, str]] = []

    def _row_count(self) -> int:
        return len(self.rows)

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

"""The results of the current search, as a Qt list model with modality filtering."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QImage

from mmstudio.core.search import SearchResult

ResultRole = Qt.ItemDataRole.UserRole + 1
ThumbRole = Qt.ItemDataRole.UserRole + 2  # QImage, a text snippet (str), or None


def thumb_key(result: SearchResult) -> tuple[str, float | None]:
    """One thumbnail per file and moment: a video's poster is its matched frame."""
    moment = result.start if result.modality in ("video", "audio") else None
    return result.path, moment


class ResultsModel(QAbstractListModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.results: list[SearchResult] = []
        # key -> QImage | str (snippet) | Exception (no thumbnail); kept across searches
        self.thumbs: dict[tuple[str, float | None], object] = {}
        self._rows_of: dict[tuple[str, float | None], list[int]] = {}

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.results)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        result = self.results[index.row()]
        if role == ResultRole:
            return result
        if role == ThumbRole:
            return self.thumbs.get(thumb_key(result))
        if role == Qt.ItemDataRole.DisplayRole:
            return Path(result.path).name
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{result.path}\nscore {result.score:.3f} · similarity {result.similarity:.3f} in {result.space}"
        return None

    def set_results(self, results: list[SearchResult]) -> None:
        self.beginResetModel()
        self.results = list(results)
        self._rows_of = {}
        for row, result in enumerate(self.results):
            self._rows_of.setdefault(thumb_key(result), []).append(row)
        self.endResetModel()

    def clear_thumbnails(self) -> None:
        """Thumbnail size changed: every picture is made again."""
        self.thumbs.clear()
        if self.results:
            self.dataChanged.emit(self.index(0), self.index(len(self.results) - 1), [ThumbRole])

    def missing_thumbnails(self, rows: range) -> list[tuple[str, float | None]]:
        keys = []
        for row in rows:
            if 0 <= row < len(self.results):
                key = thumb_key(self.results[row])
                if key not in self.thumbs and key not in keys:
                    keys.append(key)
        return keys

    def set_thumbnail(self, key: tuple[str, float | None], thumb: QImage | str | Exception) -> None:
        self.thumbs[key] = thumb
        for row in self._rows_of.get(key, ()):
            index = self.index(row)
            self.dataChanged.emit(index, index, [ThumbRole])


class ModalityFilter(QSortFilterProxyModel):
    """Shows the results of the modalities switched on (all by default)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.hidden: set[str] = set()

    def set_shown(self, modality: str, shown: bool) -> None:
        changing = hasattr(self, "beginFilterChange")  # Qt 6.10+; invalidate* is deprecated
        if changing:
            self.beginFilterChange()
        if shown:
            self.hidden.discard(modality)
        else:
            self.hidden.add(modality)
        if changing:
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, row: int, parent: QModelIndex) -> bool:
        result = self.sourceModel().index(row, 0, parent).data(ResultRole)
        return result is not None and result.modality not in self.hidden

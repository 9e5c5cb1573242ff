"""Colours, modality glyphs and time formats shared by the views."""

from __future__ import annotations

import math
from functools import lru_cache

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap

from mmstudio.core.segments import MODALITY_HEX

MODALITY_COLOURS = {m: QColor(h) for m, h in MODALITY_HEX.items()}
# one letter on a coloured disc reads at 16 px, where a drawn pictogram does not
MODALITY_GLYPHS = {"image": "I", "video": "V", "audio": "A", "text": "T"}


def modality_colour(modality: str) -> QColor:
    return MODALITY_COLOURS.get(modality, QColor("#7f8c8d"))


def paint_modality_badge(painter: QPainter, rect: QRectF, modality: str) -> None:
    """A coloured disc with the modality's letter, inside `rect`."""
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(modality_colour(modality))
    painter.drawEllipse(rect)
    font = QFont(painter.font())
    font.setBold(True)
    font.setPixelSize(max(8, int(rect.height() * 0.6)))
    painter.setFont(font)
    painter.setPen(QColor("white"))
    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, MODALITY_GLYPHS.get(modality, "?"))
    painter.restore()


@lru_cache(maxsize=16)
def modality_icon(modality: str, size: int = 16) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    paint_modality_badge(painter, QRectF(0, 0, size, size), modality)
    painter.end()
    return QIcon(pixmap)


def clock(seconds: float | None) -> str:
    """00:03, or 1:02:03 past an hour; --:-- when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "--:--"
    total = int(max(seconds, 0))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def moment_text(start: float | None, end: float | None) -> str:
    """The badge of a matched moment: 00:03–00:06 (empty when there is none)."""
    if start is None:
        return ""
    if end is None or clock(end) == clock(start):  # a frame is an instant
        return clock(start)
    return f"{clock(start)}–{clock(end)}"


def duration_text(seconds: float) -> str:
    """An ETA: 45 s, 3 min, 1 h 05 min."""
    if seconds < 60:
        return f"{max(int(seconds), 1)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"

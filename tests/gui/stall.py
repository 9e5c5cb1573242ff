"""Measuring the GUI thread: event-loop stalls while a job runs, and cold start."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import soundfile as sf
from PySide6.QtCore import QCoreApplication, QObject, QTimer

from mmstudio.core.samples import PATTERNS, SOUNDS, TEXTS, draw, tone


class StallProbe(QObject):
    """A 10 ms timer on the GUI thread: the longest gap between its ticks is the worst
    time the event loop could not answer (input, paint) while it ran."""

    def __init__(self, interval_ms: int = 10) -> None:
        super().__init__()
        self.interval = interval_ms / 1000
        self.gaps: list[float] = []
        self._last = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.gaps.clear()
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now

    @property
    def longest_ms(self) -> float:
        return max(self.gaps, default=0.0) * 1000

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.gaps, q)) * 1000 if self.gaps else 0.0


def many_items(folder: Path, n: int = 240) -> Path:
    """n small generated items: half pictures, a third texts, the rest sounds."""
    folder.mkdir(parents=True, exist_ok=True)
    patterns, texts = list(PATTERNS), list(TEXTS.values())
    for i in range(n):
        if i % 6 < 3:
            draw(patterns[i % len(patterns)], 96, seed=i).save(folder / f"pic-{i:04d}.png")
        elif i % 6 < 5:
            (folder / f"note-{i:04d}.txt").write_text(f"{texts[i % len(texts)]} (note {i})",
                                                       encoding="utf-8")
        else:
            sf.write(folder / f"sound-{i:04d}.wav",
                     tone(SOUNDS[i % len(SOUNDS)], 1.0, 16000, seed=i), 16000)
    return folder


def wait_until(condition, timeout: float = 600.0) -> None:
    """Run the event loop until `condition()` holds (outside pytest-qt's qtbot)."""
    app = QCoreApplication.instance()
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"still waiting after {timeout:.0f} s")
        app.processEvents()
        time.sleep(0.002)

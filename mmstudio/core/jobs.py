"""What every long job takes: a progress callback and a cancel token.

A job is a plain function. The CLI drives it with a progress bar, the GUI through a
worker that turns progress into signals, tests call it directly. Cancelling is
cooperative: the job checks the token between units of work and stops cleanly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from mmstudio.core.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    message: str = ""
    errors: int = 0


ProgressCallback = Callable[[Progress], None]


def no_progress(_: Progress) -> None:
    return None


class CancelToken:
    """Set once by whoever wants the job to stop; read by the job."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled")

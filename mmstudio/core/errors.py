"""Error types whose messages tell the user what to do."""

from __future__ import annotations


class MmstudioError(Exception):
    """Base class for errors shown to the user as a sentence, not a traceback."""


class MediaError(MmstudioError):
    """A file that cannot be read as the media its extension promises."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class LibraryLockedError(MmstudioError):
    """Another process holds the library for writing."""

    def __init__(self, path: object, pid: int | None) -> None:
        who = f"PID {pid}" if pid else "another process"
        super().__init__(
            f"library in use by {who}: {path}. Close the other mmstudio "
            "(or wait for its job to finish) and try again."
        )
        self.path = str(path)
        self.pid = pid


class ModelUnavailableError(MmstudioError):
    """A model's weights are not on disk and will not be fetched silently."""


class Cancelled(MmstudioError):
    """A job was cancelled by its caller."""

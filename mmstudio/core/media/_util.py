"""Small helpers shared by the per-modality decoders."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmstudio.core.errors import MediaError


def require_file(path: str | os.PathLike[str]) -> Path:
    """Return `path` as a Path, or raise MediaError if it is missing, not a file or empty.

    Checked up front so every decoder reports these cases the same way, instead of
    each library's own wording ("Format not recognised", "cannot identify", ...).
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError as exc:
        raise MediaError(path, "file not found") from exc
    except OSError as exc:
        raise MediaError(path, f"cannot read file ({exc.strerror or exc})") from exc
    if not p.is_file():
        raise MediaError(path, "not a regular file")
    if st.st_size == 0:
        raise MediaError(path, "empty file")
    return p


def fit_within(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size of a `width` x `height` picture scaled down so its longer side <= max_side.

    Never scales up, and never returns a zero side for extreme aspect ratios.
    """
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


@contextmanager
def as_media_error(path: object) -> Iterator[None]:
    """Re-raise anything but MediaError from the block as MediaError(path, ...).

    The last line of defence behind each decoder's own handling: a library tripping
    over input its authors never saw (IndexError in a TIFF parser, struct.error in a
    RIFF chunk, MemoryError on a huge file) is still bad input to us, and callers
    (the ingest pipeline, a query) report it per file and go on.
    """
    try:
        yield
    except MediaError:
        raise
    except Exception as exc:
        raise MediaError(path, f"cannot decode ({type(exc).__name__}: {exc})") from exc

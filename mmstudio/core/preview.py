"""What the preview pane shows of one result, loaded off the GUI thread.

Plain functions (no Qt): the pane runs them as jobs, tests call them directly.

- `similarity_curve`: how close the query is to every moment of a video or an audio
  file, from the vectors already in the store (nothing is decoded or encoded again).
- `waveform_peaks`: a min/max envelope of an audio file or a video's soundtrack.
- `preview_image` / `preview_text`: an image bounded for the screen, a text file's
  text (a window of it around the match when the file is huge).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mmstudio.core import media
from mmstudio.core.errors import MediaError
from mmstudio.core.jobs import CancelToken, Progress, ProgressCallback, no_progress
from mmstudio.core.media import audio as media_audio
from mmstudio.core.media._util import as_media_error, require_file
from mmstudio.core.media.video import soundtrack_blocks

if TYPE_CHECKING:
    from PIL import Image

    from mmstudio.core.library import Library

log = logging.getLogger(__name__)

#: The longer side of a previewed image: sharp on a 4K screen, bounded in memory.
IMAGE_MAX_SIDE = 4096
#: A text longer than this is shown as a window of this many characters around the match:
#: a text widget laying out 100 MB of text freezes the window.
TEXT_MAX_CHARS = 2_000_000
# Vectors are fetched from the store in batches of this many points (a cancel is seen
# between batches).
_VECTOR_BATCH = 512
# The waveform envelope is first kept at this many columns per second, then reduced to
# the bins asked for: the length of a video's soundtrack is only known at its end.
_ENVELOPE_RATE = 200
# A soundtrack is decoded at this rate: the envelope needs no more.
_SOUNDTRACK_RATE = 8000


@dataclass(frozen=True)
class CurvePoint:
    """The query's cosine similarity to one segment (a frame: start == end), in seconds."""

    start: float
    end: float
    similarity: float

    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2


@dataclass(frozen=True)
class Waveform:
    """A min/max envelope for drawing.

    peaks: float32 array of shape (bins, 2): the lowest and highest sample in each bin,
    in [-1, 1], bins spread evenly over `duration` seconds (fewer bins than asked for
    when the sound is very short).
    """

    peaks: np.ndarray
    duration: float

    @property
    def bins(self) -> int:
        return int(self.peaks.shape[0])


@dataclass(frozen=True)
class TextPreview:
    """The text to show and where the match lies in it.

    text: the whole decoded text, or a window of it when the file is huge.
    offset: where `text` starts in the file's decoded text (0 when it is all there).
    total: the length of the whole decoded text, in characters.
    """

    text: str
    offset: int
    total: int

    @property
    def truncated(self) -> bool:
        return len(self.text) < self.total

    def span(self, char_start: int | None, char_end: int | None) -> tuple[int, int] | None:
        """A span of the whole text as offsets into `text`, clipped; None if not in it."""
        if char_start is None or char_end is None:
            return None
        start = max(0, char_start - self.offset)
        end = min(len(self.text), char_end - self.offset)
        return (start, end) if end > start else None


# ---------------------------------------------------------------------------- similarity


def similarity_curve(
    library: Library,
    path: str | os.PathLike[str],
    vectors: Mapping[str, np.ndarray],
    space: str,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> list[CurvePoint]:
    """The query's similarity to every timed segment of `path`, in time order.

    vectors: the query's {space: unit vector}. `space` is tried first (the space the
    result ranked best in); if the query or the file lacks it, any other space they
    share. Empty when they share none, or the file is not indexed.
    """
    segments = [s for s in library.catalog.segments_of(str(path)) if s.start is not None]
    if not segments:
        return []
    indexed = library.catalog.files_under([Path(path)]).get(str(path))
    file_spaces = indexed.space_set if indexed is not None else frozenset()
    shared = [s for s in vectors if not file_spaces or s in file_spaces]
    candidates = sorted(shared, key=lambda s: (s != space, s))  # the result's own space first
    for candidate in candidates:
        query = np.asarray(vectors[candidate], dtype=np.float32).reshape(-1)
        points = _curve_in(library, segments, query, candidate, progress, cancel)
        if points:
            log.debug("similarity curve of %s in %s: %d points", path, candidate, len(points))
            return points
    return []


def _curve_in(library, segments, query, space, progress, cancel) -> list[CurvePoint]:
    norm = float(np.linalg.norm(query))
    if norm == 0 or not np.isfinite(norm):
        return []
    query = query / norm
    points: list[CurvePoint] = []
    total = len(segments)
    for lo in range(0, total, _VECTOR_BATCH):
        if cancel is not None:
            cancel.raise_if_cancelled()
        batch = segments[lo : lo + _VECTOR_BATCH]
        stored = library.store.vectors([s.id for s in batch], space)
        for seg in batch:
            vector = stored.get(seg.id)
            if vector is None or vector.shape != query.shape:
                continue  # this segment is in another space (a video's frames vs its sound)
            length = float(np.linalg.norm(vector))
            if length > 0:
                similarity = float(vector @ query) / length
                points.append(CurvePoint(float(seg.start), float(seg.end if seg.end is not None
                                                                 else seg.start), similarity))
        progress(Progress(min(lo + _VECTOR_BATCH, total), total, "similarity"))
    points.sort(key=lambda p: (p.start, p.end))
    return points


# ---------------------------------------------------------------------------- waveform


def waveform_peaks(
    path: str | os.PathLike[str],
    bins: int = 2000,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> Waveform:
    """The min/max envelope of an audio file, or of a video's soundtrack, in `bins` bins.

    Streams: an hour of audio never sits in memory. Raises MediaError for a file that
    is not readable audio, or a video without a soundtrack.
    """
    if bins < 1:
        raise ValueError(f"bins must be positive, got {bins!r}")
    modality = media.modality_of(path)
    if modality not in ("audio", "video"):
        raise MediaError(path, "not an audio or video file")
    p = require_file(path)
    if modality == "audio":
        rate, total = _audio_info(p, path)
        blocks = media_audio.audio_blocks(p, rate)  # its own rate: no resampling
    else:
        rate, total = _SOUNDTRACK_RATE, 0
        blocks = soundtrack_blocks(p, path, rate)
    low, high, samples = _envelope(_guarded(blocks, path), rate, total, progress, cancel)
    if samples == 0:
        raise MediaError(path, "no audio samples" if modality == "audio" else "no soundtrack")
    return Waveform(_rebin(low, high, bins), samples / rate)


def _audio_info(p: Path, path: object) -> tuple[int, int]:
    import soundfile as sf  # slow to import; only decoders need it

    try:
        info = sf.info(str(p))
    except (RuntimeError, OSError, ValueError, TypeError) as exc:
        reason = (str(exc).strip() or type(exc).__name__).splitlines()[0][:200]
        raise MediaError(path, f"not a readable audio file ({reason})") from exc
    if info.samplerate <= 0:
        raise MediaError(path, "no audio samples")
    return int(info.samplerate), max(0, int(info.frames))


def _guarded(blocks: Iterator[np.ndarray], path: object) -> Iterator[np.ndarray]:
    # Decoding errors become MediaError; a cancel raised by the consumer is not wrapped.
    with as_media_error(path):
        yield from blocks


def _envelope(
    blocks: Iterable[np.ndarray],
    rate: int,
    total: int,
    progress: ProgressCallback,
    cancel: CancelToken | None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Min and max of every column of rate / _ENVELOPE_RATE samples, and the sample count."""
    column = max(1, rate // _ENVELOPE_RATE)
    lows: list[np.ndarray] = []
    highs: list[np.ndarray] = []
    carry = np.zeros(0, np.float32)  # a partial column left from the previous block
    samples = 0
    for block in blocks:
        if cancel is not None:
            cancel.raise_if_cancelled()
        samples += block.size
        data = np.concatenate([carry, block]) if carry.size else block
        whole = data.size - data.size % column
        if whole:
            cols = data[:whole].reshape(-1, column)
            lows.append(cols.min(axis=1))
            highs.append(cols.max(axis=1))
        carry = data[whole:].copy()
        progress(Progress(min(samples, total), total, "waveform"))
    if carry.size:
        lows.append(carry.min(keepdims=True))
        highs.append(carry.max(keepdims=True))
    if not lows:
        return np.zeros(0, np.float32), np.zeros(0, np.float32), samples
    return np.concatenate(lows), np.concatenate(highs), samples


def _rebin(low: np.ndarray, high: np.ndarray, bins: int) -> np.ndarray:
    """Reduce per-column min/max to at most `bins` bins spread evenly over the columns."""
    n = low.size
    if n <= bins:
        return np.clip(np.stack([low, high], axis=1), -1.0, 1.0).astype(np.float32)
    edges = (np.arange(bins, dtype=np.int64) * n) // bins
    peaks = np.stack([np.minimum.reduceat(low, edges), np.maximum.reduceat(high, edges)], axis=1)
    return np.clip(peaks, -1.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------- image, text


def preview_image(path: str | os.PathLike[str], max_side: int = IMAGE_MAX_SIDE) -> Image.Image:
    """The picture in `path`, upright and RGB, its longer side at most `max_side` pixels."""
    return media.load_image(path, media.DecodeOptions(image_max_side=max_side))


def preview_text(
    path: str | os.PathLike[str],
    char_start: int | None = None,
    char_end: int | None = None,
    max_chars: int = TEXT_MAX_CHARS,
) -> TextPreview:
    """The decoded text of `path` (what chunk offsets index), or a window around the match."""
    text = media.read_text(path)
    total = len(text)
    if total <= max_chars:
        return TextPreview(text, 0, total)
    # Centre the window on the match (or show the beginning when there is none).
    middle = (char_start + (char_end or char_start)) // 2 if char_start is not None else 0
    offset = min(max(0, middle - max_chars // 2), total - max_chars)
    return TextPreview(text[offset : offset + max_chars], offset, total)

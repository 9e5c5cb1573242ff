"""Thumbnails for the results grid: pictures, video posters, waveforms, text snippets.

The GUI thread never decodes: a worker runs `thumbnails()` (a job: progress, cancel,
one MediaError per bad file) and the grid shows what comes back. Pictures are cached
on disk, normally in `<library>/thumbs/`, under a key made of the file's identity
(absolute path, mtime, size), the thumbnail size, the moment and a version, so a
second request never decodes and an edited file gets a fresh thumbnail. Cache files
are written to a temporary name and renamed into place, so a reader (or a second
worker making the same thumbnail) never sees half a file.

Stored formats: images and video posters are JPEG (quality 85): `media.load_image`
already flattens transparency onto white, so there is no alpha left to keep in a PNG.
Waveforms are PNG: flat colours and one-pixel lines are what JPEG smears. Text items
get a snippet; it is cached too (as a .txt), because reading a large file to show
300 characters of it is not free, but Thumbnail.path stays None for text.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from mmstudio.core import media
from mmstudio.core.errors import MediaError
from mmstudio.core.jobs import CancelToken, Progress, ProgressCallback, no_progress
from mmstudio.core.media._util import as_media_error, fit_within, require_file
from mmstudio.core.media.video import seek_frame
from mmstudio.core.segments import Modality

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

#: Bump when what a thumbnail looks like changes: old cache entries are then never hit.
VERSION = 1
#: The folder of a library that holds its thumbnail cache.
THUMBS = "thumbs"

JPEG_QUALITY = 85
SNIPPET_CHARS = 300
# Moments are cached to this resolution (seconds): a result's moment moves by less
# than this between two searches without the poster visibly changing.
_MOMENT_STEP = 0.1
# A frame whose grey level varies less than this (standard deviation, 0..255) is
# black, a fade or a title card's flat colour: not a poster.
_MIN_POSTER_STD = 8.0
# Where (fractions of the duration) the default poster is looked for, in order.
_POSTER_AT = (0.10, 0.25, 0.40, 0.55, 0.70, 0.85)
# When a video does not say how long it is: seconds to try instead.
_POSTER_AT_SECONDS = (1.0, 3.0, 10.0, 30.0)
# Waveforms are scaled to the file's own peak so quiet recordings still show their
# shape, but by at most 1 / this: near-silence stays flat instead of becoming noise.
_PEAK_FLOOR = 0.05

_BACKGROUND = (236, 236, 236)
_AXIS = (200, 200, 200)
_WAVE = (62, 96, 150)
_MARKER = (214, 48, 39)

_SUFFIX: dict[Modality, str] = {"image": ".jpg", "video": ".jpg", "audio": ".png", "text": ".txt"}


@dataclass(frozen=True)
class Thumbnail:
    """What the grid shows for one item.

    path: the cached PNG/JPEG picture (image, video, audio); None for text.
    snippet: for text, its first ~300 visible characters with whitespace collapsed.
    width, height: the picture's size in pixels; (0, 0) for text.
    """

    path: Path | None
    snippet: str | None
    width: int
    height: int


def thumbs_dir(library_path: str | os.PathLike[str]) -> Path:
    """The thumbnail cache of the library at `library_path`."""
    return Path(library_path) / THUMBS


def thumbnail(
    source: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str],
    size: int = 256,
    *,
    moment: float | None = None,
) -> Thumbnail:
    """The thumbnail of `source`, from the cache in `cache_dir` or made and cached now.

    Pictures fit in size x size (never scaled up); a waveform is size x size/2.
    `moment` (seconds) picks a video's poster frame and marks an audio waveform; it is
    ignored for images and text. Raises MediaError for an unsupported or unreadable
    file; OSError if the cache cannot be written.
    """
    if size < 1:
        raise ValueError(f"thumbnail size must be positive, got {size!r}")
    path = Path(source)
    modality = media.modality_of(path)
    if modality is None:
        raise MediaError(source, f"unsupported file type {path.suffix or '(no extension)'!r}")
    require_file(path)  # missing, not a file, empty: the same reasons media gives
    try:
        stat = path.stat()
    except OSError as exc:
        raise MediaError(source, f"cannot read file ({exc.strerror or exc})") from exc
    moment = _moment_key(moment) if modality in ("video", "audio") else None
    target = _cache_path(cache_dir, path, stat, size, moment, modality)
    cached = _from_cache(target, modality)
    if cached is not None:
        return cached
    with as_media_error(source):
        made = _make(modality, path, source, size, moment)
    if isinstance(made, str):
        _write_atomic(target, lambda f: f.write(made.encode("utf-8")))
        return Thumbnail(path=None, snippet=made, width=0, height=0)
    if target.suffix == ".png":
        _write_atomic(target, lambda f: made.save(f, format="PNG", optimize=True))
    else:
        _write_atomic(target, lambda f: made.save(f, format="JPEG", quality=JPEG_QUALITY))
    return Thumbnail(path=target, snippet=None, width=made.width, height=made.height)


def _make(
    modality: Modality, path: Path, source: object, size: int, moment: float | None
) -> Image.Image | str:
    """Decode `path` into its thumbnail picture, or its snippet for text."""
    if modality == "text":
        return _snippet(media.read_text(path), source)
    if modality == "image":
        # image_max_side = size: JPEGs decode at 1/2..1/8 scale (draft), and the
        # picture comes back fitted, EXIF-rotated and flattened onto white.
        return media.load_image(path, media.DecodeOptions(image_max_side=size))
    if modality == "video":
        return _poster(path, source, size, moment)
    return _waveform(path, source, size, moment)


def thumbnails(
    sources: Iterable[tuple[str | os.PathLike[str], float | None]],
    cache_dir: str | os.PathLike[str],
    size: int = 256,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[tuple[Path, float | None, Thumbnail | MediaError]]:
    """A job: (path, moment, thumbnail or the file's MediaError) for each (path, moment).

    A bad file yields its error and the job goes on. Cancelling stops it between
    files, quietly (the caller asked for it); a progress callback that raises
    Cancelled stops it too, with the exception. Progress.total is 0 when `sources`
    has no length.
    """
    progress = progress or no_progress
    total = len(sources) if isinstance(sources, Sized) else 0
    done = errors = 0
    progress(Progress(0, total, "making thumbnails"))
    for source, moment in sources:
        if cancel is not None and cancel.cancelled:
            log.info("thumbnails cancelled after %d of %s files", done, total or "?")
            return
        path = Path(source)
        result: Thumbnail | MediaError
        try:
            result = thumbnail(path, cache_dir, size, moment=moment)
        except MediaError as exc:
            log.info("no thumbnail: %s", exc)
            result = exc
            errors += 1
        done += 1
        progress(Progress(done, total, path.name, errors))
        yield path, moment, result


# ---------------------------------------------------------------------------- cache


def _cache_path(
    cache_dir: str | os.PathLike[str],
    path: Path,
    stat: os.stat_result,
    size: int,
    moment: float | None,
    modality: Modality,
) -> Path:
    """Where the thumbnail of this version of `path` lives: <cache>/<key[:2]>/<key>.<ext>."""
    identity = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size, size, moment, VERSION)
    # repr() escapes the lone surrogates of undecodable file names, so this encodes.
    key = hashlib.sha1(repr(identity).encode("utf-8")).hexdigest()
    return Path(cache_dir) / key[:2] / f"{key}{_SUFFIX[modality]}"


def _moment_key(moment: float | None) -> float | None:
    if moment is None or not math.isfinite(moment):
        return None
    return round(max(0.0, round(moment / _MOMENT_STEP) * _MOMENT_STEP), 1)


def _from_cache(target: Path, modality: Modality) -> Thumbnail | None:
    """The cached thumbnail at `target`, reading no more than a picture's header."""
    try:
        if modality == "text":
            return Thumbnail(None, target.read_text(encoding="utf-8"), 0, 0)
        with Image.open(target) as im:  # lazy: parses the header, decodes no pixels
            width, height = im.size
    except FileNotFoundError:
        return None
    except (OSError, ValueError, SyntaxError) as exc:  # a damaged cache entry: remake it
        log.warning("ignoring unreadable cached thumbnail %s (%s)", target, exc)
        return None
    return Thumbnail(target, None, width, height)


def _write_atomic(target: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write `target` through a temporary file in its folder and rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache entry is not
        try:
            os.replace(tmp, target)
        except PermissionError:
            # Windows: a reader holds the file another worker just put there; it is
            # the same thumbnail, so theirs will do.
            if not target.exists():
                raise
            os.unlink(tmp)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---------------------------------------------------------------------------- text


_WORD = re.compile(r"\S+")


def _snippet(text: str, source: object, limit: int = SNIPPET_CHARS) -> str:
    """The first `limit` characters of `text` with runs of whitespace made one space.

    Walks words lazily, so a huge file costs only its beginning here. Cut text ends
    at a word boundary (unless a word is very long) and gets an ellipsis.
    """
    words: list[str] = []
    length = -1
    cut = False
    for match in _WORD.finditer(text):
        word = match.group()
        words.append(word)
        length += 1 + len(word)
        if length > limit:
            cut = True
            break
    if not words:
        raise MediaError(source, "no text")
    snippet = " ".join(words)
    if not cut:
        return snippet
    snippet = snippet[:limit]
    space = snippet.rfind(" ")
    if space > 0.7 * limit:
        snippet = snippet[:space]
    return snippet.rstrip() + "…"


# ---------------------------------------------------------------------------- video


def _poster(path: Path, source: object, size: int, moment: float | None) -> Image.Image:
    """The frame at `moment`, else the first frame at ~10% of the video that is not flat."""
    import cv2  # slow to import; only video posters need it

    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise MediaError(source, "not a readable video (cannot open the stream)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        frames = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        known = all(math.isfinite(v) and v > 0 for v in (fps, frames)) and fps <= 1000
        duration = frames / fps if known else None
        if moment is not None:
            # A moment past the end (a rounded or stale one) shows the last frame.
            at = min(moment, max(0.0, duration - 1.0 / fps)) if duration else moment
            bgr = seek_frame(cap, at, source)
            if bgr is not None:
                return _fit(bgr, size)
            log.info("%s: no frame at %.1f s; using the default poster", source, moment)
        times = [f * duration for f in _POSTER_AT] if duration else _POSTER_AT_SECONDS
        best: tuple[float, np.ndarray] | None = None
        for at in times:
            bgr = seek_frame(cap, at, source)
            if bgr is None:
                continue
            small = _fit_bgr(bgr, size)
            spread = float(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).std())
            if spread > _MIN_POSTER_STD:
                return _rgb(small)
            if best is None or spread > best[0]:
                best = (spread, small)
    finally:
        cap.release()
    if best is None:
        # No seek landed on a frame (a stream without an index, say): the first frame.
        best = (0.0, _fit_bgr(_first_frame(path, source), size))
    return _rgb(best[1])  # all flat (a black video): the least flat of them


def _first_frame(path: Path, source: object) -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        ok, bgr = cap.read() if cap.isOpened() else (False, None)
    finally:
        cap.release()
    if not ok or bgr is None or not bgr.size:
        raise MediaError(source, "no video frames could be decoded")
    return bgr


def _fit_bgr(bgr: np.ndarray, size: int) -> np.ndarray:
    import cv2

    height, width = bgr.shape[:2]
    fitted = fit_within(width, height, size)
    if fitted == (width, height):
        return bgr
    return cv2.resize(bgr, fitted, interpolation=cv2.INTER_AREA)


def _rgb(bgr: np.ndarray) -> Image.Image:
    import cv2

    return Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _fit(bgr: np.ndarray, size: int) -> Image.Image:
    return _rgb(_fit_bgr(bgr, size))


# ---------------------------------------------------------------------------- audio


def _waveform(path: Path, source: object, size: int, moment: float | None) -> Image.Image:
    """A size x size/2 min/max envelope of the whole file (streamed by waveform_peaks)."""
    from mmstudio.core.preview import waveform_peaks

    width, height = size, max(1, size // 2)
    wave = waveform_peaks(path, bins=width)
    low, high = wave.peaks[:, 0], wave.peaks[:, 1]
    if low.size < width:  # a very short sound has fewer envelope columns than pixels
        spread = np.arange(width) * low.size // width
        low, high = low[spread], high[spread]
    return _draw_waveform(low, high, height, moment / wave.duration if moment is not None else None)


def _draw_waveform(
    low: np.ndarray, high: np.ndarray, height: int, marker: float | None
) -> Image.Image:
    """Draw min/max per column; `marker` is a fraction of the width (None: no marker)."""
    width = low.size
    image = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    middle = (height - 1) / 2
    draw.line([(0, round(middle)), (width - 1, round(middle))], fill=_AXIS)
    heard = np.isfinite(low)  # columns past a short read stay empty
    if heard.any():
        peak = max(float(np.abs(low[heard]).max()), float(np.abs(high[heard]).max()), _PEAK_FLOOR)
        scale = middle / peak
        for x in np.flatnonzero(heard):
            top = round(middle - float(high[x]) * scale)
            bottom = round(middle - float(low[x]) * scale)
            draw.line([(int(x), top), (int(x), bottom)], fill=_WAVE)
    if marker is not None:
        x = min(width - 1, max(0, int(marker * width)))
        draw.line([(x, 0), (x, height - 1)], fill=_MARKER, width=max(1, width // 128))
    return image

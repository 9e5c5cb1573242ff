"""Videos: sampled frames (regular plus scene cuts) through OpenCV, then the
soundtrack's audio windows through PyAV. Both stream: a frame is yielded as soon as
it is read and a window as soon as it fills, so no video is ever held in memory.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from mmstudio.core.errors import MediaError
from mmstudio.core.media._util import fit_within, require_file
from mmstudio.core.media.audio import frames_to_blocks, window_segments
from mmstudio.core.media.options import DEFAULT_OPTIONS, DecodeOptions
from mmstudio.core.segments import Segment

if TYPE_CHECKING:
    import cv2

log = logging.getLogger(__name__)

# Scene-cut detection looks at about this many frames per second (every frame of a
# 10 fps video, every 2nd at 25-30 fps, every 5th at 60 fps). Skipped frames are only
# grab()bed: demuxed and decoded, but not colour-converted or copied out.
_CHECKS_PER_SECOND = 12.5
# Histograms are taken of a copy this small: a cut changes the colours of the whole
# picture, which survives any downscale, and it keeps the check well under 1 ms.
_HIST_SIDE = 64
# Colour histogram distance (see `_distance`: 0 same colours .. 1 disjoint) above
# which two consecutive checked frames are taken to be in different shots.
_CUT_DISTANCE = 0.4
# A cut frame is not emitted this close (seconds) to another emitted frame.
_CUT_MIN_GAP = 0.25
# Frame rates outside this are container nonsense; then timestamps come from the
# decoder's position instead of frame_number / fps.
_MAX_FPS = 1000.0


def decode_video(path: str | os.PathLike[str], options: DecodeOptions) -> Iterator[Segment]:
    """Frame segments (kind "image"), then the soundtrack's windows (kind "audio")."""
    p = require_file(path)
    count = 0
    for segment in _frames(p, path, options):
        yield segment
        count += 1
    if count == 0:
        raise MediaError(path, "no video frames could be decoded")
    yield from window_segments(soundtrack_blocks(p, path, options.audio_rate), options, first_index=count)


def _frames(p: Path, path: object, options: DecodeOptions) -> Iterator[Segment]:
    import cv2  # slow to import; only the video decoder needs it

    cap = cv2.VideoCapture(str(p), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise MediaError(path, "not a readable video (cannot open the stream)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        fps_ok = math.isfinite(fps) and 0 < fps <= _MAX_FPS
        check_every = max(1, round(fps / _CHECKS_PER_SECOND)) if fps_ok else 1
        # A frame is "at" time T if it is the first one shown no earlier than half a
        # frame before T.
        slack = 0.5 / fps if fps_ok else 0.02
        period = 1.0 / options.frames_per_second
        due = 0  # number of the next regular sample, due at due * period
        last_emitted = -math.inf
        previous: tuple[np.ndarray, np.ndarray] | None = None
        frame_no = -1
        index = 0
        while True:
            try:
                if not cap.grab():
                    break
                frame_no += 1
                t = frame_no / fps if fps_ok else cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                regular = t >= due * period - slack
                check = options.scene_cuts and frame_no % check_every == 0
                if not (regular or check):
                    continue
                ok, bgr = cap.retrieve()
            except cv2.error as exc:
                if index == 0:
                    raise MediaError(path, f"video stream is corrupt ({exc})") from exc
                log.warning("%s: stopped reading frames at %d (%s)", path, frame_no, exc)
                break
            if not ok or bgr is None:
                continue
            cut = False
            if options.scene_cuts:
                hist = _colour_histograms(bgr)
                cut = previous is not None and _distance(previous, hist) > _CUT_DISTANCE
                previous = hist
            if regular:
                while due * period - slack <= t:  # also skips samples a gap jumped over
                    due += 1
            elif not (cut and t - last_emitted > _CUT_MIN_GAP and due * period - t > _CUT_MIN_GAP):
                continue
            image = _to_image(bgr, options.image_max_side)
            yield Segment(kind="image", data=image, index=index, start=t, end=t)
            index += 1
            last_emitted = t
    finally:
        cap.release()


def frame_at(path: str | os.PathLike[str], seconds: float,
             max_side: int = DEFAULT_OPTIONS.image_max_side) -> Image.Image:
    """The frame shown at `seconds`, as decoding would give it (RGB, bounded size)."""
    import cv2

    p = require_file(path)
    cap = cv2.VideoCapture(str(p), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise MediaError(path, "not a readable video (cannot open the stream)")
        bgr = seek_frame(cap, seconds, path)
    finally:
        cap.release()
    if bgr is None:
        raise MediaError(path, f"no frame could be read at {seconds:.2f} s")
    return _to_image(bgr, max_side)


def seek_frame(cap: cv2.VideoCapture, seconds: float, source: object) -> np.ndarray | None:
    """The BGR frame at `seconds` of an open capture; None where the stream has none."""
    import cv2

    try:
        cap.set(cv2.CAP_PROP_POS_MSEC, seconds * 1000.0)
        ok, bgr = cap.read()
    except cv2.error as exc:  # one bad spot in the stream; other positions may do
        log.debug("%s: cannot read a frame at %.1f s (%s)", source, seconds, exc)
        return None
    return bgr if ok and bgr is not None and bgr.size else None


def _colour_histograms(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two coarse colour histograms of a tiny copy, on bin grids offset by half a bin.

    RGB bins rather than hue: hue is noise on grey pixels, and compression noise in a
    grey scene would look like a cut. Two grids because a flat area whose colour
    drifts across a bin edge (a fade, a slow exposure change) moves all its mass at
    once on one grid, but not on the other: `_distance` takes the smaller change.
    """
    import cv2

    height, width = bgr.shape[:2]
    stride = max(1, max(height, width) // (4 * _HIST_SIDE))
    small = bgr[::stride, ::stride]
    small = cv2.resize(
        small, fit_within(small.shape[1], small.shape[0], _HIST_SIDE), interpolation=cv2.INTER_AREA
    ).astype(np.intp)
    grid_a = small >> 6  # 4 levels per channel: 0..3
    grid_b = (small + 32) >> 6  # shifted by half a bin: 0..4
    return _normalised_bincount(grid_a, 4), _normalised_bincount(grid_b, 5)


def _normalised_bincount(levels: np.ndarray, n: int) -> np.ndarray:
    bins = (levels[..., 0] * n + levels[..., 1]) * n + levels[..., 2]
    counts = np.bincount(bins.ravel(), minlength=n**3).astype(np.float64)
    return counts / counts.sum()


def _distance(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Total variation distance (0 same .. 1 disjoint) on the grid that changed least."""
    return min(0.5 * float(np.abs(x - y).sum()) for x, y in zip(a, b, strict=True))


def _to_image(bgr: np.ndarray, max_side: int) -> Image.Image:
    import cv2

    height, width = bgr.shape[:2]
    size = fit_within(width, height, max_side)
    if size != (width, height):
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def soundtrack_blocks(p: Path, path: object, rate: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks at `rate` of the first audio stream; none if there is none.

    The frames are already out by the time this runs, so a broken soundtrack only
    costs its own windows: it is logged, never raised.
    """
    import av  # slow to import; only decoders need it

    try:
        container = av.open(str(p))
    except Exception as exc:  # whatever FFmpeg says, the frames stand
        log.warning("%s: cannot open the soundtrack (%s)", path, exc)
        return
    with container:
        if not container.streams.audio:
            return
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        try:
            for frame in container.decode(stream):
                yield from frames_to_blocks(resampler.resample(frame))
            yield from frames_to_blocks(resampler.resample(None))
        except Exception as exc:  # a corrupt packet: keep the windows decoded so far
            log.warning("%s: soundtrack decoding stopped early (%s)", path, exc)

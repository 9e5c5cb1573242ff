"""Audio files, and the windowing shared with video soundtracks.

Everything streams: files are read in blocks, resampled block by block with one
resampler (so there are no seams at block edges) and cut into overlapping windows
as they fill, so an hour of audio never sits in memory at once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from mmstudio.core.errors import MediaError
from mmstudio.core.media._util import as_media_error, require_file
from mmstudio.core.media.options import DecodeOptions
from mmstudio.core.segments import Audio, Segment

if TYPE_CHECKING:
    import av
    import soundfile

log = logging.getLogger(__name__)

# Source frames read per block: ~1.5 s at 44.1 kHz, small against any window.
_BLOCK_FRAMES = 65536


def load_audio(path: str | os.PathLike[str], rate: int) -> Audio:
    """The whole of `path` as mono float32 at `rate` Hz (for queries, not for ingest)."""
    with as_media_error(path):
        samples = np.concatenate([np.zeros(0, np.float32), *audio_blocks(path, rate)])
    if samples.size == 0:
        raise MediaError(path, "no audio samples")
    return Audio(samples=samples, rate=rate)


def decode_audio(path: str | os.PathLike[str], options: DecodeOptions) -> Iterator[Segment]:
    """Overlapping audio windows of an audio file."""
    yield from window_segments(audio_blocks(path, options.audio_rate), options, first_index=0)
    # window_segments yields at least one window for any non-empty input, and
    # audio_blocks raises for a file without samples.


def audio_blocks(path: str | os.PathLike[str], rate: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks of the file at `rate` Hz, read with soundfile."""
    import soundfile as sf  # slow to import (cffi + libsndfile); only decoders need it

    p = require_file(path)
    try:
        f = sf.SoundFile(p)
    except (RuntimeError, OSError, ValueError, TypeError) as exc:
        raise MediaError(path, f"not a readable audio file ({_short(exc)})") from exc
    with f:
        if f.frames == 0:
            raise MediaError(path, "no audio samples")
        source = _read_mono(f, path)
        produced = 0
        for block in resample_blocks(source, f.samplerate, rate):
            produced += block.size
            yield block
        if produced == 0:
            raise MediaError(path, "no audio samples")


def _read_mono(f: soundfile.SoundFile, path: object) -> Iterator[np.ndarray]:
    while True:
        try:
            block = f.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
        except (RuntimeError, OSError, ValueError) as exc:
            raise MediaError(path, f"audio data is corrupt ({_short(exc)})") from exc
        if block.shape[0] == 0:
            return
        # Mean, not sum: a stereo file at full scale stays within [-1, 1].
        yield block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]


def resample(audio: Audio, rate: int) -> Audio:
    """The same sound at another sample rate (for an encoder that wants its own rate)."""
    if audio.rate == rate:
        return audio
    blocks = list(resample_blocks([audio.samples], audio.rate, rate))
    samples = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    return Audio(samples, rate)


def resample_blocks(blocks: Iterable[np.ndarray], source_rate: int, rate: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks at `source_rate` -> mono float32 blocks at `rate`."""
    if source_rate == rate:
        for block in blocks:
            yield np.ascontiguousarray(block, dtype=np.float32)
        return
    import av  # slow to import; only decoders need it

    # One resampler for the whole stream: its filter state carries across blocks.
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    for block in blocks:
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(block, dtype=np.float32)[None, :], format="flt", layout="mono"
        )
        frame.sample_rate = source_rate
        yield from frames_to_blocks(resampler.resample(frame))
    yield from frames_to_blocks(resampler.resample(None))  # flush the filter's tail


def frames_to_blocks(frames: list[av.AudioFrame]) -> Iterator[np.ndarray]:
    for frame in frames:
        # Packed mono "flt" comes out as shape (1, n).
        samples = frame.to_ndarray().reshape(-1).astype(np.float32, copy=False)
        if samples.size:
            yield samples


def window_segments(
    blocks: Iterable[np.ndarray], options: DecodeOptions, first_index: int
) -> Iterator[Segment]:
    """Audio segments for a stream of mono blocks at options.audio_rate."""
    rate = options.audio_rate
    index = first_index
    for samples, start in audio_windows(blocks, rate, options.audio_window, options.audio_hop):
        yield Segment(
            kind="audio",
            data=Audio(samples=samples, rate=rate),
            index=index,
            start=start / rate,
            end=(start + samples.size) / rate,
        )
        index += 1


def audio_windows(
    blocks: Iterable[np.ndarray], rate: int, window: float, hop: float
) -> Iterator[tuple[np.ndarray, int]]:
    """Cut a stream of sample blocks into (samples, start_sample) windows.

    Windows of `window` seconds start every `hop` seconds. Input shorter than one
    window gives one window of its full length. At the end, a partial window of at
    least half a window is kept; a shorter one is dropped, but if that leaves the
    end of the input in no window, a full-length window ending at the end is emitted
    instead, so every part of the recording is heard by some window.
    """
    size = max(1, round(window * rate))
    step = max(1, round(hop * rate))
    buffer = np.zeros(0, np.float32)
    buffer_start = 0  # sample offset of buffer[0] in the stream
    next_start = 0  # where the next window begins
    covered = 0  # end of the last window emitted
    total = 0
    for block in blocks:
        if block.size == 0:
            continue
        buffer = np.concatenate([buffer, block])
        total += block.size
        while next_start + size <= total:
            offset = next_start - buffer_start
            yield buffer[offset : offset + size].copy(), next_start
            covered = next_start + size
            next_start += step
        # Keep what a later window, or the end-aligned last window, may still need.
        keep_from = max(buffer_start, min(next_start, total - size))
        buffer = buffer[keep_from - buffer_start :]
        buffer_start = keep_from
    if total == 0 or covered >= total:
        return
    if covered == 0:  # shorter than one window: all of it
        yield buffer[-total:].copy(), 0
    elif total - next_start >= size / 2:
        yield buffer[next_start - buffer_start :].copy(), next_start
    else:
        yield buffer[-size:].copy(), total - size


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]

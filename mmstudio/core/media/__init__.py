"""Decoding files into segments: the one place that knows about media formats.

`decode(path)` is a generator of Segments (images, text chunks, audio windows,
video frames), yielded as they are decoded so that long media stream through. It
runs on the ingest pipeline's decoder threads. Anything wrong with the file (empty,
truncated, not what its extension says, a decompression bomb, no content at all)
is raised as MediaError with a short reason; other exceptions never escape for bad
input. Heavy libraries (OpenCV, PyAV, soundfile) are imported on first use.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from mmstudio.core.errors import MediaError
from mmstudio.core.media._util import as_media_error
from mmstudio.core.media.audio import decode_audio, load_audio, resample
from mmstudio.core.media.image import decode_image, load_image
from mmstudio.core.media.options import DEFAULT_OPTIONS, DecodeOptions
from mmstudio.core.media.text import decode_text, read_text
from mmstudio.core.media.video import decode_video
from mmstudio.core.segments import Modality, Segment

__all__ = [
    "EXTENSIONS",
    "DecodeOptions",
    "decode",
    "load_audio",
    "load_image",
    "modality_of",
    "read_text",
    "resample",
]

_BY_MODALITY: dict[Modality, tuple[str, ...]] = {
    "image": (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"),
    "text": (".txt", ".md", ".csv", ".json", ".html", ".htm"),
    # What libsndfile reads (mp3 since 1.1, opus inside ogg since 1.0.29).
    "audio": (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif"),
    "video": (".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v"),
}

#: Every supported extension (lower-case, with the dot) -> its modality.
EXTENSIONS: dict[str, Modality] = {
    ext: modality for modality, exts in _BY_MODALITY.items() for ext in exts
}

_DECODERS: dict[Modality, Callable[[str | os.PathLike[str], DecodeOptions], Iterator[Segment]]] = {
    "image": decode_image,
    "text": decode_text,
    "audio": decode_audio,
    "video": decode_video,
}


def modality_of(path: str | os.PathLike[str]) -> Modality | None:
    """The modality of `path` by its extension (case-insensitive), None if unsupported."""
    return EXTENSIONS.get(Path(path).suffix.lower())


def decode(path: str | os.PathLike[str], options: DecodeOptions = DEFAULT_OPTIONS) -> Iterator[Segment]:
    """Yield the segments of `path`, indexed 0, 1, 2, ... in yield order.

    A generator: nothing is read until the first segment is asked for, and errors are
    raised from that point on. Raises MediaError for an unsupported extension, for
    unreadable input and for a file that yields no segment at all. A video yields its
    frames (kind "image", start == end) first, then its soundtrack's windows.
    """
    modality = modality_of(path)
    if modality is None:
        raise MediaError(path, f"unsupported file type {Path(path).suffix or '(no extension)'!r}")
    count = 0
    with as_media_error(path):
        for segment in _DECODERS[modality](path, options):
            yield segment
            count += 1
    if count == 0:
        raise MediaError(path, "no content could be decoded")

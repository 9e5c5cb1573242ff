"""What decoding produces: segments of a file, ready for the encoders.

A segment is the unit that gets a vector: an image, a chunk of text, a window of
audio, a video frame. Times are seconds from the start of the file; text spans are
character offsets into the decoded text of the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

Modality = Literal["image", "text", "audio", "video"]
# What a segment carries, by the kind of input the encoders receive.
Kind = Literal["image", "text", "audio"]

MODALITIES: tuple[str, ...] = ("image", "text", "audio", "video")
#: one colour per modality, the same in the grid's badges and on the map
MODALITY_HEX: dict[str, str] = {
    "image": "#2f7ed8", "video": "#8e44ad", "audio": "#e67e22", "text": "#27ae60",
}
#: the kinds of segment each modality decodes into
KINDS_OF: dict[str, frozenset[str]] = {
    "image": frozenset({"image"}),
    "text": frozenset({"text"}),
    "audio": frozenset({"audio"}),
    "video": frozenset({"image", "audio"}),
}


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples in [-1, 1] at `rate` Hz."""

    samples: np.ndarray
    rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.rate)


Payload = Image.Image | str | Audio


@dataclass(frozen=True)
class Segment:
    """One piece of a file to embed.

    kind: what `data` is (an RGB PIL image, a str, an Audio).
    index: position of the segment within its file (0, 1, ...), stable across runs.
    start / end: seconds for audio windows and video frames (a frame has start == end).
    char_start / char_end: span in the file's decoded text, for text chunks.
    """

    kind: Kind
    data: Payload
    index: int
    start: float | None = None
    end: float | None = None
    char_start: int | None = None
    char_end: int | None = None

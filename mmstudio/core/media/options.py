"""How files are cut into segments: the knobs every decoder reads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DecodeOptions:
    """Settings for `decode`.

    frames_per_second: regular video frame sampling (a frame at t = 0, 1/fps, 2/fps, ...).
    scene_cuts: also emit the first frame after each detected scene cut.
    audio_rate: sample rate (Hz) that audio windows are delivered at.
    audio_window / audio_hop: window length and step, in seconds.
    image_max_side: decoded images (and video frames) are downscaled so that their
        longer side is at most this many pixels. This bounds memory; the encoders
        resize further to their own input size.
    max_megapixels: decompression-bomb limit. An image whose header claims more than
        this many megapixels (width * height / 1e6) is refused before any pixel is
        decoded, so a tiny file cannot make the app allocate gigabytes. PIL's own
        hard limit (2 * PIL.Image.MAX_IMAGE_PIXELS, about 179 MP) applies on top.
    text_chunk_chars: target maximum size of a text chunk, in characters.
    """

    frames_per_second: float = 1.0
    scene_cuts: bool = True
    audio_rate: int = 16000
    audio_window: float = 3.0
    audio_hop: float = 1.5
    image_max_side: int = 512
    max_megapixels: float = 100.0
    text_chunk_chars: int = 1000

    def __post_init__(self) -> None:
        # Bad options are a programming error, not bad media: fail loudly and early.
        positive = {
            "frames_per_second": self.frames_per_second,
            "audio_rate": self.audio_rate,
            "audio_window": self.audio_window,
            "audio_hop": self.audio_hop,
            "image_max_side": self.image_max_side,
            "max_megapixels": self.max_megapixels,
            "text_chunk_chars": self.text_chunk_chars,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"DecodeOptions.{name} must be positive, got {value!r}")


#: The defaults, shared (the dataclass is frozen) as the default argument of decoders.
DEFAULT_OPTIONS = DecodeOptions()

"""Generated collections for the benchmarks (never timed): pictures, notes, sounds.

Everything comes from mmstudio.core.samples, so a run needs no data set and no
network, and the same arguments always give the same files.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import soundfile as sf

from mmstudio.core.samples import PATTERNS, SOUNDS, TEXTS, draw, tone

log = logging.getLogger(__name__)

IMAGE_SIZE = 256
AUDIO_RATE = 16000
AUDIO_SECONDS = 2.0


def write_image(folder: Path, n: int) -> Path:
    """The n-th picture: patterns and seeds vary, JPEG and PNG alternate."""
    pattern = PATTERNS[n % len(PATTERNS)]
    ext = "jpg" if n % 2 == 0 else "png"
    path = folder / f"img-{n:05d}-{pattern}.{ext}"
    image = draw(pattern, IMAGE_SIZE, seed=n)
    if ext == "jpg":
        image.save(path, quality=90)
    else:
        image.save(path)
    return path


def write_text(folder: Path, n: int) -> Path:
    """A short note stitched from the sample texts (one chunk for the text encoder)."""
    names = sorted(TEXTS)
    first, second = names[n % len(names)], names[(n // len(names)) % len(names)]
    path = folder / f"note-{n:05d}-{first}.txt"
    path.write_text(f"Note {n}.\n\n{TEXTS[first]}\n\n{TEXTS[second]}\n", encoding="utf-8")
    return path


def write_sound(folder: Path, n: int) -> Path:
    """A 2-second 16 kHz wav (one audio window)."""
    kind = SOUNDS[n % len(SOUNDS)]
    path = folder / f"sound-{n:05d}-{kind}.wav"
    sf.write(path, tone(kind, AUDIO_SECONDS, AUDIO_RATE, seed=n), AUDIO_RATE)
    return path


def images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [write_image(folder, n) for n in range(count)]
    log.info("generated %d images in %s", count, folder)
    return paths


def mixed(folder: Path, count: int) -> Counter[str]:
    """`count` files, evenly interleaved: of every ten, 8 pictures, 1 note, 1 sound."""
    folder.mkdir(parents=True, exist_ok=True)
    kinds: Counter[str] = Counter()
    for n in range(count):
        if n % 10 == 3:
            write_text(folder, n)
            kinds["text"] += 1
        elif n % 10 == 7:
            write_sound(folder, n)
            kinds["audio"] += 1
        else:
            write_image(folder, n)
            kinds["image"] += 1
    log.info("generated %s in %s", dict(kinds), folder)
    return kinds

"""Generated media: a small sample library for the demo, the tests and the benchmarks.

Everything is drawn or synthesised here (numpy, PIL, soundfile, OpenCV), so the
app can show itself working with no data set and no network.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image, ImageDraw

PATTERNS = ("stripes", "checker", "circles", "gradient", "dots", "waves")

TEXTS = {
    "cats": "The cat curled up on the warm windowsill and purred.\n\n"
    "Kittens chase string, pounce on shadows and sleep most of the day.",
    "cars": "The sports car accelerated down the motorway, its engine roaring.\n\n"
    "Electric vehicles need charging stations along the highway.",
    "ocean": "Waves crashed on the rocky shore while gulls circled above the sea.\n\n"
    "The tide pools held crabs, starfish and anemones.",
    "cooking": "Simmer the tomatoes with garlic and basil, then stir in the pasta.\n\n"
    "Bake the bread until the crust is golden brown.",
    "music": "The orchestra tuned their violins before the symphony began.\n\n"
    "A drummer kept the rhythm while the guitarist played a solo.",
    "space": "The rocket lifted off toward the orbiting space station.\n\n"
    "Astronomers pointed the telescope at a distant galaxy.",
}


def draw(pattern: str, size: int = 256, seed: int = 0) -> Image.Image:
    """A structured synthetic picture; the same (pattern, seed) gives the same picture."""
    rng = np.random.default_rng(seed)
    hue = rng.uniform(0, 1, size=3)
    fg = tuple(int(60 + 195 * h) for h in hue)
    bg = tuple(int(255 - c * 0.8) for c in fg)
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    step = int(rng.integers(size // 16, size // 6))
    if pattern == "stripes":
        for x in range(0, size, 2 * step):
            d.rectangle([x, 0, x + step - 1, size], fill=fg)
    elif pattern == "checker":
        for y in range(0, size, step):
            for x in range(0, size, step):
                if (x // step + y // step) % 2 == 0:
                    d.rectangle([x, y, x + step - 1, y + step - 1], fill=fg)
    elif pattern == "circles":
        for r in range(size // 2, 0, -step):
            c = size // 2
            d.ellipse([c - r, c - r, c + r, c + r], fill=fg if (r // step) % 2 else bg)
    elif pattern == "gradient":
        ramp = np.linspace(0, 1, size, dtype=np.float32)[None, :, None]
        arr = np.asarray(bg, np.float32) * (1 - ramp) + np.asarray(fg, np.float32) * ramp
        img = Image.fromarray(np.repeat(arr, size, axis=0).astype(np.uint8))
    elif pattern == "dots":
        for _ in range(40):
            x, y = rng.integers(0, size, 2)
            r = int(rng.integers(4, step + 5))
            d.ellipse([x - r, y - r, x + r, y + r], fill=fg)
    elif pattern == "waves":
        ys = np.arange(size)
        for x in range(size):
            y0 = size / 2 + size / 4 * np.sin(x / step)
            col = np.where(ys < y0)[0]
            if len(col):
                d.line([x, 0, x, int(col[-1])], fill=fg)
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    return img


def tone(kind: str, seconds: float = 3.0, rate: int = 22050, seed: int = 0) -> np.ndarray:
    """Mono float32 audio of a recognisable kind: tone, chirp, noise, clicks, chord."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    if kind == "tone":
        y = 0.5 * np.sin(2 * np.pi * 440 * t)
    elif kind == "chirp":
        f = 300 + 2500 * ((t * 2) % 1.0)
        y = 0.5 * np.sin(2 * np.pi * np.cumsum(f) / rate)
    elif kind == "noise":
        y = 0.3 * rng.standard_normal(len(t))
    elif kind == "clicks":
        y = np.zeros_like(t)
        y[:: rate // 8] = 0.9
    elif kind == "chord":
        y = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0))
    else:
        raise ValueError(f"unknown sound {kind!r}")
    y = y + 0.01 * rng.standard_normal(len(t))
    return np.asarray(y, dtype=np.float32)


SOUNDS = ("tone", "chirp", "noise", "clicks", "chord")


def write_video(path: Path, scenes: Sequence[tuple[str, int, float]], fps: int = 10,
                size: int = 128) -> Path:
    """An mp4 of scenes (pattern, seed, seconds) back to back (video only, mp4v)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    try:
        for pattern, seed, seconds in scenes:
            frame = np.asarray(draw(pattern, size, seed))[:, :, ::-1]
            for _ in range(int(round(seconds * fps))):
                writer.write(np.ascontiguousarray(frame))
    finally:
        writer.release()
    return path


def make_sample_library(folder: Path, images_per_pattern: int = 2) -> Path:
    """A small mixed folder: pictures, texts, sounds, a video and multimodal items."""
    folder = Path(folder)
    for sub in ("images", "texts", "sounds", "videos", "items"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for pattern in PATTERNS:
        for seed in range(images_per_pattern):
            draw(pattern, 256, seed).save(folder / "images" / f"{pattern}-{seed}.png")
    for name, text in TEXTS.items():
        (folder / "texts" / f"{name}.txt").write_text(text, encoding="utf-8")
    for kind in SOUNDS:
        sf.write(folder / "sounds" / f"{kind}.wav", tone(kind, 4.0), 22050)
    write_video(folder / "videos" / "scenes.mp4",
                [("stripes", 0, 2.0), ("circles", 1, 2.0), ("checker", 2, 2.0)])
    draw("dots", 256, 7).save(folder / "items" / "confetti.png")
    (folder / "items" / "confetti.txt").write_text(
        "Colourful confetti scattered across the party table.", encoding="utf-8"
    )
    sf.write(folder / "items" / "confetti.wav", tone("clicks", 3.0), 22050)
    return folder

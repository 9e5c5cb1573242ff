"""Small generated collections for the engine tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from mmstudio.core.samples import draw, tone, write_video

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def colour_pictures(folder: Path, per_colour: int, size: int) -> None:
    """`per_colour` slightly varied pictures of each of COLOURS, named red0.png, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, rgb in COLOURS.items():
        for k in range(per_colour):
            a = np.clip(np.array(rgb) + rng.integers(-20, 20, (size, size, 3)), 0, 255)
            Image.fromarray(a.astype(np.uint8)).save(folder / f"{name}{k}.png")


def good_collection(folder: Path) -> dict[str, Path]:
    """Pictures, texts, sounds, a video and a two-file item; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for n, pattern in enumerate(("stripes", "checker", "circles", "gradient")):
        files[pattern] = folder / "pics" / f"{pattern}.png"
        files[pattern].parent.mkdir(exist_ok=True)
        draw(pattern, 160, seed=n).save(files[pattern])
    texts = {
        "cats": "Cats purr and chase mice around the barn.",
        "boats": "Sailing boats crossed the harbour at dawn.\n\nThe regatta lasted all day.",
    }
    for name, text in texts.items():
        files[name] = folder / "notes" / f"{name}.txt"
        files[name].parent.mkdir(exist_ok=True)
        files[name].write_text(text, encoding="utf-8")
    for kind in ("tone", "noise"):
        files[kind] = folder / "sounds" / f"{kind}.wav"
        files[kind].parent.mkdir(exist_ok=True)
        sf.write(files[kind], tone(kind, 2.0, 16000), 16000)
    files["video"] = folder / "clips" / "scenes.mp4"
    files["video"].parent.mkdir(exist_ok=True)
    write_video(files["video"], [("dots", 5, 2.0), ("waves", 6, 2.0)], fps=5, size=96)
    files["pet_image"] = folder / "pet.png"
    draw("dots", 160, seed=9).save(files["pet_image"])
    files["pet_text"] = folder / "pet.txt"
    files["pet_text"].write_text("A small dog that likes long walks.", encoding="utf-8")
    (folder / "readme.unknown").write_text("not a media file")
    (folder / ".hidden.png").write_bytes(b"")  # hidden: never scanned
    return files


def broken_collection(folder: Path) -> dict[str, Path]:
    """One file of each kind of bad input."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = {
        "empty": folder / "empty.jpg",
        "truncated": folder / "truncated.jpg",
        "random_wav": folder / "random.wav",
        "random_mp4": folder / "random.mp4",
        "bomb": folder / "bomb.png",
        "binary_text": folder / "binary.txt",
    }
    files["empty"].write_bytes(b"")
    good = folder / "whole.jpg"
    draw("stripes", 200).save(good, quality=90)
    files["truncated"].write_bytes(good.read_bytes()[:600])
    good.unlink()
    files["random_wav"].write_bytes(rng.bytes(5000))
    files["random_mp4"].write_bytes(rng.bytes(5000))
    Image.new("1", (12000, 12000)).save(files["bomb"])  # 144 MP, a few kB on disk
    files["binary_text"].write_bytes(rng.bytes(3000))
    return files


def bump_mtime(path: Path, seconds: int = 5) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 1_000_000_000))

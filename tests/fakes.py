"""A deterministic, fast stand-in encoder for pipeline tests (no weights).

Vectors depend on content, so similar inputs land close: images by their colour
statistics, text by hashed character trigrams, audio by band energies. It counts
what it encodes, so tests can assert that nothing was encoded twice.
"""

from __future__ import annotations

import time
import zlib
from collections import Counter

import numpy as np

from mmstudio.encoders.base import l2_normalise


class FakeEncoder:
    name = "fake"
    dims = {"fake-visual": 8, "fake-sound": 4}
    routes = {"image": ("fake-visual",), "text": ("fake-visual",), "audio": ("fake-sound",)}
    batch_size = 4
    sample_rate = 16000

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: Counter[str] = Counter()
        self.delay = delay

    def encode(self, kind, batch):
        self.calls[kind] += len(batch)
        if self.delay:
            time.sleep(self.delay)
        if kind == "image":
            rows = []
            for im in batch:
                a = np.asarray(im.convert("RGB").resize((16, 16)), np.float32) / 255.0
                rows.append(np.concatenate([a.mean((0, 1)), a.std((0, 1)), [a.mean() + 0.1, 0.1]]))
            return {"fake-visual": l2_normalise(np.array(rows))}
        if kind == "text":
            rows = []
            for text in batch:
                v = np.zeros(8, np.float32) + 1e-3
                t = text.lower()
                for i in range(len(t) - 2):
                    v[zlib.crc32(t[i : i + 3].encode()) % 8] += 1
                rows.append(v)
            return {"fake-visual": l2_normalise(np.array(rows))}
        rows = []
        for audio in batch:
            spec = np.abs(np.fft.rfft(audio.samples, n=2048))
            bands = np.array_split(spec, 4)
            rows.append(np.array([b.sum() for b in bands]) + 1e-6)
        return {"fake-sound": l2_normalise(np.array(rows))}


class ExtraImageEncoder:
    """A second model family stand-in: images only, into a space of its own."""

    name = "extra"
    dims = {"fake-extra": 3}
    routes = {"image": ("fake-extra",)}
    batch_size = 8

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def encode(self, kind, batch):
        self.calls[kind] += len(batch)
        rows = [np.asarray(im.convert("RGB").resize((8, 8)), np.float32).mean((0, 1)) + 1
                for im in batch]
        return {"fake-extra": l2_normalise(np.array(rows))}


class AudioOnlyEncoder(FakeEncoder):
    """The fake encoder with its picture and text routes taken away."""

    dims = {"fake-sound": 4}
    routes = {"audio": ("fake-sound",)}


class BrokenEncoder(FakeEncoder):
    """Fails on every input (a driver error, corrupt weights)."""

    def encode(self, kind, batch):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


class PickyEncoder(FakeEncoder):
    """Fails on one particular input only: pictures that are pure red."""

    def encode(self, kind, batch):
        if kind == "image" and any(im.getpixel((0, 0)) == (255, 0, 0) for im in batch):
            raise ValueError("this picture trips the model")
        return super().encode(kind, batch)

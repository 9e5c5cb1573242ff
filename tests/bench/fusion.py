"""Fusion classifiers on a generated two-modality library where only fusion can win.

Each item is a picture and a sound with the same stem: a red or blue picture (shade
jitter, pixel noise and a few darker stripes) and a high (1.5-3 kHz) or low
(150-400 Hz) tone with noise, of 1-2 s. The label says whether colour and pitch
"match" (red-high, blue-low) or "cross": an XOR, so either modality alone is at
chance and a classifier has to combine them. The library is indexed with the starter
profile (EfficientNet-Lite0 picture features, signal-processing audio features), the
items labelled, and `mmstudio.fusion.train` cross-validates every method (5 folds).

Targets: early and attention fusion beat the best single-modality probe by at least
0.15 accuracy. Late fusion mixes per-modality predictions, so on an XOR it cannot do
better than its modalities; the notes say what it did.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from mmstudio.core.ingest import index
from mmstudio.core.library import Library
from mmstudio.fusion.train import Hyper, train
from mmstudio.labels import Schema
from tests.bench.report import BenchResult, Clock, Table, Target

log = logging.getLogger(__name__)

NAME = "fusion"
MARGIN = 0.15
RATE = 16000


def make_items(folder: Path, n: int, seed: int = 0) -> dict[str, str]:
    """n picture + sound pairs; returns stem -> label ("match" or "cross")."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = {}
    for i in range(n):
        red, high = i % 2 == 0, (i // 2) % 2 == 0
        stem = f"item{i:04d}"
        base = np.array([200, 45, 40] if red else [40, 60, 200], np.float32)
        base = base + rng.uniform(-30, 30, 3)
        pixels = base + rng.normal(0, 18, (96, 96, 3))
        step = int(rng.integers(8, 24))
        pixels[:, ::step] *= 0.6  # stripes: texture the encoder has to see past
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{stem}.png")
        freq = rng.uniform(1500, 3000) if high else rng.uniform(150, 400)
        t = np.arange(int(RATE * rng.uniform(1.0, 2.0))) / RATE
        sound = 0.4 * np.sin(2 * np.pi * freq * t) + 0.03 * rng.standard_normal(len(t))
        sf.write(folder / f"{stem}.wav", sound.astype(np.float32), RATE)
        labels[stem] = "match" if red == high else "cross"
    return labels


def run(quick: bool, tmp: Path) -> BenchResult:
    started = time.perf_counter()
    n = 80 if quick else 200
    labels = make_items(tmp / "media", n)
    with Library(tmp / "lib") as library:
        with Clock() as indexing:
            done = index(library, [tmp / "media"])
        if done.errors:
            log.warning("%d files failed to index: %s", len(done.errors), done.errors[0])
        stems = {Path(p).stem: item for item, files in library.catalog.item_files().items()
                 for p, _ in files}
        library.labels.save_schema(Schema.of("xor", ["match", "cross"]))
        library.labels.set_labels("xor", {stems[s]: {label} for s, label in labels.items()})
        hyper = Hyper()
        with Clock() as training:
            report = train(library, "xor", "all", hyper=hyper)
        suggestions = library.labels.suggestions("xor")

    table = Table(["method", "accuracy", "macro-F1",
                   *(f"acc w/o {name.split(':')[0]}" for name in report.inputs), "train s"])
    for name, m in report.methods.items():
        table.add(name, f"{m.accuracy:.3f}", f"{m.macro_f1:.3f}",
                  *(f"{m.ablation[i].accuracy:.3f}" for i in report.inputs), f"{m.seconds:.1f}")
    best_probe = max(m.accuracy for m in report.probes.values())
    targets = [Target(f"{method} accuracy - best probe", report.methods[method].accuracy
                      - best_probe, ">=", MARGIN) for method in ("early", "attention")]
    late = report.methods["late"]
    attention = report.methods["attention"]
    notes = [
        f"late fusion: accuracy {late.accuracy:.3f}, macro-F1 {late.macro_f1:.3f}, weights "
        + ", ".join(f"{k} {w:.2f}" for k, w in (late.late_weights or {}).items())
        + " (a mixture of per-modality predictions cannot express an XOR)",
        "attention per modality by label: " + "; ".join(
            f"{c}: " + ", ".join(f"{k.split(':')[0]} {w:.2f}" for k, w in by.items())
            for c, by in (attention.attention or {}).items()),
        f"indexing {indexing.timing.wall:.1f} s ({done.indexed} files); training all methods "
        f"({report.folds} folds + refit + suggestions) {training.timing.wall:.1f} s; "
        f"best {report.best}, {len(suggestions)} suggestions",
    ]
    return BenchResult(
        name=NAME, title="fusion classifiers on an XOR of picture colour and sound pitch",
        params={"items": n, "folds": report.folds, "epochs": hyper.epochs,
                "inputs": ",".join(report.inputs)},
        table=table, targets=targets, notes=notes,
        data={"report": {k: {"accuracy": m.accuracy, "macro_f1": m.macro_f1,
                             "ablation": {a: s.accuracy for a, s in m.ablation.items()},
                             "seconds": m.seconds, "late_weights": m.late_weights,
                             "attention": m.attention}
                         for k, m in report.methods.items()},
              "best": report.best, "index_s": indexing.timing.wall,
              "train_s": training.timing.wall},
        seconds=time.perf_counter() - started,
    )

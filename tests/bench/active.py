"""Active learning: labels needed to reach a target accuracy, uncertainty vs random order.

A generated pool stands for a library's item features: 10 classes of unequal size
(the largest 6x the smallest), each a mixture of three sub-clusters on the unit
sphere in 64 dimensions, with noise that makes neighbouring classes overlap, and a
fifth of the pool near-duplicates of other items (as bursts of photos or the frames
of one clip are). A simulated person labels the queue in batches of 10, starting
from 10 random labels; after each batch the session's classifier
(`labels.suggest.model_scores`: the k-NN vote until each class in use has 3
examples, then logistic regression) is retrained and scored on a held-out set.
Orders compared, all through `labels.queue`: random, uncertainty only (margin), and
uncertainty with diversity (the session's default). The target accuracy is 95 % of
what the same classifier reaches with the whole pool labeled, and an order reaches it
at the number of labels after which accuracy stays above it; target of the bench:
uncertainty with diversity needs at most 80 % of the labels random order needs
(mean over seeds).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from mmstudio.fusion.features import Features, Input
from mmstudio.labels.queue import by_uncertainty
from mmstudio.labels.schema import Schema
from mmstudio.labels.suggest import model_scores
from tests.bench.report import BenchResult, Table, Target

NAME = "active"
CLASSES = 10
DIM = 64
BATCH = 10
START = 10
STRATEGIES = ("random", "uncertainty", "uncertainty + diversity")


def make_pool(n: int, seed: int, draw: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n items of the world `seed` (its class centres); `draw` picks the sample."""
    centres = np.random.default_rng(seed).normal(size=(CLASSES, 3, DIM))
    rng = np.random.default_rng([seed, draw])
    sizes = np.linspace(6, 1, CLASSES)
    sizes = np.maximum((sizes / sizes.sum() * n * 0.8).astype(int), 3)
    x, y = [], []
    for c, size in enumerate(sizes):
        sub = rng.integers(0, 3, size)
        x.append(centres[c, sub] + rng.normal(scale=1.1, size=(size, DIM)))
        y += [c] * size
    x, y = np.concatenate(x), np.array(y)
    dup = rng.integers(0, len(x), n - len(x))  # near-duplicates of random items
    x = np.concatenate([x, x[dup] + rng.normal(scale=0.05, size=(len(dup), DIM))])
    y = np.concatenate([y, y[dup]])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    order = rng.permutation(len(x))
    return x[order].astype(np.float32), y[order]


def accuracy(x_lab, y_lab, x_test, y_test, schema) -> float:
    ids = np.arange(len(x_lab) + len(x_test))
    feats = Features(ids, (Input("image", "generated"),), (np.concatenate([x_lab, x_test]),),
                     np.ones((len(ids), 1), bool))
    labels = {i: frozenset({schema.names[c]}) for i, c in enumerate(y_lab)}
    scores = model_scores(feats, labels, schema)
    pred = scores.probs[len(x_lab):].argmax(axis=1)
    return float((pred == y_test).mean())


def curve(strategy: str, x, y, x_test, y_test, schema, budget: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    labeled = list(rng.choice(len(x), START, replace=False))
    accs = []
    while True:
        accs.append(accuracy(x[labeled], y[labeled], x_test, y_test, schema))
        if len(labeled) >= budget:
            return accs
        rest = np.setdiff1d(np.arange(len(x)), labeled)
        if strategy == "random":
            picks = rng.choice(rest, BATCH, replace=False)
        else:
            ids = np.arange(len(x))
            feats = Features(ids, (Input("image", "generated"),), (x,), np.ones((len(x), 1), bool))
            labels = {int(i): frozenset({schema.names[y[i]]}) for i in labeled}
            scores = model_scores(feats, labels, schema)
            u = scores.uncertainty()[rest]
            diversity = 0.5 if strategy.endswith("diversity") else 0.0
            picks = rest[by_uncertainty(u, x[rest], batch=BATCH, diversity=diversity)[:BATCH]]
        labeled += [int(i) for i in picks]


def labels_to_reach(accs: list[float], target: float) -> int | None:
    """Labels after which accuracy stays at or above the target (None: never)."""
    below = [k for k, a in enumerate(accs) if a < target]
    k = below[-1] + 1 if below else 0
    return START + k * BATCH if k < len(accs) else None


def run(quick: bool, tmp: Path) -> BenchResult:
    started = time.perf_counter()
    n, budget, seeds = (1500, 300, (0,)) if quick else (3000, 600, (0, 1, 2))
    schema = Schema.of("generated", [f"class{c}" for c in range(CLASSES)])
    needed: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    curves: dict[str, list[list[float]]] = {s: [] for s in STRATEGIES}
    ceilings = []
    for seed in seeds:
        x, y = make_pool(n, seed)
        x_test, y_test = make_pool(1000, seed, draw=1)
        ceiling = accuracy(x, y, x_test, y_test, schema)
        ceilings.append(ceiling)
        for s in STRATEGIES:
            accs = curve(s, x, y, x_test, y_test, schema, budget, seed)
            curves[s].append(accs)
            reached = labels_to_reach(accs, 0.95 * ceiling)
            # not reached within the budget: count the budget, a lower bound
            needed[s].append(float(reached if reached is not None else budget))
    table = Table(["labels", *STRATEGIES])
    steps = min(len(c) for cs in curves.values() for c in cs)
    for k in range(0, steps, 2):
        table.add(START + k * BATCH, *(f"{np.mean([c[k] for c in curves[s]]):.3f}"
                                       for s in STRATEGIES))
    summary = Table(["order", "labels to reach target (mean)", "per seed"])
    for s in STRATEGIES:
        summary.add(s, f"{np.mean(needed[s]):.0f}", " ".join(f"{v:.0f}" for v in needed[s]))
    ratio = float(np.mean(needed["uncertainty + diversity"]) / np.mean(needed["random"]))
    return BenchResult(
        NAME, "active learning: accuracy by labels given (mean over seeds)",
        {"pool": n, "test": 1000, "classes": CLASSES, "batch": BATCH, "seeds": len(seeds)},
        table,
        [Target("labels with uncertainty + diversity / labels with random order", ratio,
                "<=", 0.8)],
        [f"target accuracy: 95 % of the full-pool classifier's {np.mean(ceilings):.3f}",
         f"an order that never reached the target within {budget} labels counts {budget} "
         "(a lower bound: random order's figure, so the ratio is an upper bound)"],
        {"curves": {s: [list(map(float, c)) for c in curves[s]] for s in STRATEGIES},
         "needed": needed, "ceiling": ceilings},
        time.perf_counter() - started,
        {"summary": summary},
    )

"""The order of a labeling session's queue, and the job that plans it.

- "similarity": items most like the seed examples first (the highest cosine to any
  seed), for finding more of a rare class quickly;
- "active": the classifier's most uncertain items first, picked greedily with a
  penalty for resembling items already picked (Brinker 2003's diversity, as a
  maximal-marginal-relevance trade-off), so that a batch does not spend a person's
  time on ten near-duplicates of one hard case;
- "random": a seeded shuffle (the baseline active learning is measured against);
- "given": the pool's own order (a search result's ranking).
Items already labeled go to the end in every order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmstudio.core.errors import MmstudioError
from mmstudio.core.jobs import CancelToken, Progress, ProgressCallback, no_progress
from mmstudio.fusion.features import Features, item_features
from mmstudio.labels.schema import Schema
from mmstudio.labels.suggest import Scores, feature_matrix, model_scores, zero_shot_scores

ORDERS = ("active", "similarity", "random", "given")
DIVERSITY = 0.5  # weight of the similarity-to-picked penalty
BATCH = 20  # items picked with the diversity penalty; the rest by uncertainty alone


def by_similarity(x: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Row order by the highest cosine to any seed (rows and seeds unit vectors)."""
    if len(seeds) == 0:
        return np.arange(len(x))
    return np.argsort(-(x @ seeds.T).max(axis=1), kind="stable")


def by_uncertainty(uncertainty: np.ndarray, x: np.ndarray, batch: int = BATCH,
                   diversity: float = DIVERSITY) -> np.ndarray:
    """Most uncertain first; the first `batch` picks penalised by their similarity to
    the picks before them (so near-duplicates do not follow each other)."""
    n = len(uncertainty)
    order: list[int] = []
    if diversity > 0 and n:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        unit = x / np.maximum(norms, 1e-12)
        closest = np.full(n, -np.inf)
        free = np.ones(n, bool)
        for _ in range(min(batch, n)):
            gain = uncertainty - diversity * np.where(np.isfinite(closest), closest, 0.0)
            gain[~free] = -np.inf
            pick = int(np.argmax(gain))
            order.append(pick)
            free[pick] = False
            closest = np.maximum(closest, unit @ unit[pick])
    picked = set(order)
    rest = [int(i) for i in np.argsort(-uncertainty, kind="stable") if i not in picked]
    return np.array(order + rest, dtype=np.int64)


@dataclass(frozen=True)
class QueuePlan:
    """A session's queue and the suggestions for its items."""

    queue: tuple[int, ...]
    scores: Scores | None  # the suggestions' source and probabilities (None: no model yet)
    features: Features | None  # kept so the next plan need not read the store again


def plan_queue(library, schema: Schema, pool: Sequence[int], order: str = "active", *,
               seeds: Sequence[int] = (), features: Features | None = None,
               zero_shot: bool = True, seed: int = 0,
               progress: ProgressCallback = no_progress,
               cancel: CancelToken | None = None) -> QueuePlan:
    """Order `pool` (item ids) for labeling in `schema`, and suggest a label for each.

    seeds: items to look for more of ("similarity"); without seeds, the labeled items
    of the pool are the seeds. features: from an earlier plan of the same pool.
    """
    if order not in ORDERS:
        raise MmstudioError(f"queue order {order!r}: choose from {', '.join(ORDERS)}")
    pool = list(dict.fromkeys(int(i) for i in pool))
    if not pool:
        raise MmstudioError("the pool is empty: search, or pick items, to label them")
    if features is None or set(features.item_ids.tolist()) != set(pool):
        features = item_features(library, pool, progress=progress, cancel=cancel)
    labels = library.labels.labels(schema.name, pool)
    progress(Progress(0, 1, "suggesting labels"))
    scores = model_scores(features, labels, schema)
    if scores is None and zero_shot:
        scores = zero_shot_scores(library, schema, features.item_ids.tolist())
    if cancel is not None:
        cancel.raise_if_cancelled()
    x = feature_matrix(features)
    ids = features.item_ids
    if order == "given":
        place = {item: k for k, item in enumerate(pool)}
        rows = np.argsort([place[int(i)] for i in ids], kind="stable")
    elif order == "random":
        rows = np.random.default_rng(seed).permutation(len(ids))
    elif order == "similarity":
        chosen = set(seeds) or set(labels)
        seed_rows = [r for r, i in enumerate(ids) if int(i) in chosen]
        rows = by_similarity(x, x[seed_rows]) if seed_rows else (
            np.argsort(-scores.probs.max(axis=1), kind="stable") if scores is not None
            else np.arange(len(ids)))
    else:
        rows = (by_uncertainty(scores.uncertainty(), x) if scores is not None
                else by_uncertainty(np.zeros(len(ids)), x, diversity=1.0))
    ordered = [int(ids[r]) for r in rows]
    seen = set(ordered)
    missing = [i for i in pool if i not in seen]  # items without vectors
    queue = [i for i in ordered if i not in labels] + missing + \
            [i for i in ordered if i in labels]
    progress(Progress(1, 1, "queue ready"))
    return QueuePlan(tuple(queue), scores, features)

"""The model's suggestion for each item: a label and a confidence.

Three sources, in the order a labeling session meets them:
- zero-shot, when nothing is labeled yet: the label names encoded by the text tower of
  every text-capable space (starter's MiniLM, CLIP, CLAP) and compared with the item's
  vectors in that space; a softmax over cosine similarities (temperature ZS_TEMPERATURE:
  the confidences rank well but are not calibrated);
- a k-nearest-neighbour vote among the labeled items, in the item features (every
  modality's unit vector side by side, so the cosine is the mean over shared
  modalities), while there are too few labels to train on;
- a classifier (logistic regression on the same features, one-vs-rest for multi-label
  schemas) once every label in use has MIN_PER_CLASS examples. Its probabilities also
  give the uncertainty that active learning orders the queue by.

sklearn is imported inside the functions that use it (it takes ~0.5 s to import).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mmstudio.fusion.features import Features, available_inputs, item_features
from mmstudio.labels.schema import Schema
from mmstudio.labels.store import Suggestion

KNN_K = 10
MIN_PER_CLASS = 3
ZS_TEMPERATURE = 0.05


@dataclass(frozen=True)
class Scores:
    """Per-item probabilities over a schema's labels, from one source."""

    item_ids: np.ndarray  # (N,)
    classes: tuple[str, ...]
    probs: np.ndarray  # (N, C); rows sum to 1 for single-label, independent for multi
    source: str  # "zero-shot" | "knn" | "classifier"
    multi: bool = False

    def best(self) -> dict[int, Suggestion]:
        """The likeliest label per item; items the model knows nothing about (all-zero
        rows: no modality in common with the labeled items) get none."""
        top = self.probs.argmax(axis=1)
        return {int(i): Suggestion(self.classes[c], float(self.probs[r, c]), self.source)
                for r, (i, c) in enumerate(zip(self.item_ids, top, strict=True))
                if self.probs[r, c] > 0}

    def uncertainty(self) -> np.ndarray:
        """1 − margin between the two likeliest labels (single-label), or the most
        undecided label's closeness to 0.5 (multi-label): 1 is most uncertain."""
        blind = ~self.probs.any(axis=1)
        if self.multi:
            u = 1.0 - np.abs(2 * self.probs - 1).min(axis=1)
        elif self.probs.shape[1] < 2:
            u = np.zeros(len(self.probs))
        else:
            part = np.sort(self.probs, axis=1)
            u = 1.0 - (part[:, -1] - part[:, -2])
        return np.where(blind, 1.0, u)


def feature_matrix(features: Features) -> np.ndarray:
    """Item features for the vote and the classifier: modality vectors side by side,
    scaled so the dot product of two items is their mean cosine over modalities."""
    x = features.concat()
    return (x / np.sqrt(max(len(features.inputs), 1))).astype(np.float32)


def targets(labels: Mapping[int, frozenset[str]], ids: Sequence[int], schema: Schema) -> np.ndarray:
    """(N, C) 0/1 matrix of the labels of items `ids` (rows of unlabeled items are 0)."""
    y = np.zeros((len(ids), len(schema.names)), np.float32)
    col = {n: c for c, n in enumerate(schema.names)}
    for r, i in enumerate(ids):
        for n in labels.get(int(i), ()):
            if n in col:
                y[r, col[n]] = 1
    return y


def classifier_ready(y: np.ndarray, multi: bool) -> bool:
    """Enough labels to train: ≥ 2 labels in use, each with MIN_PER_CLASS examples
    (and, multi-label, as many items without it)."""
    pos = y.sum(axis=0)
    used = pos[pos > 0]
    if multi:
        neg = len(y) - pos
        return bool(((pos >= MIN_PER_CLASS) & (neg >= MIN_PER_CLASS)).any())
    return len(used) >= 2 and bool((used >= MIN_PER_CLASS).all())


def knn_scores(x_pool: np.ndarray, x_lab: np.ndarray, y_lab: np.ndarray, pool_ids: np.ndarray,
               schema: Schema, k: int = KNN_K) -> Scores:
    """Similarity-weighted vote of the k most similar labeled items."""
    k = max(1, min(k, len(x_lab)))
    sims = x_pool @ x_lab.T  # (N, L)
    nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    w = np.clip(np.take_along_axis(sims, nearest, axis=1), 0, None) + 1e-6
    votes = (w[:, :, None] * y_lab[nearest]).sum(axis=1) / w.sum(axis=1, keepdims=True)
    if not schema.multi:
        votes = votes / np.maximum(votes.sum(axis=1, keepdims=True), 1e-9)
    return Scores(pool_ids, schema.names, votes.astype(np.float32), "knn", schema.multi)


def classifier_scores(x_pool: np.ndarray, x_lab: np.ndarray, y_lab: np.ndarray,
                      pool_ids: np.ndarray, schema: Schema, seed: int = 0) -> Scores:
    """Logistic regression on the labeled items, probabilities for the pool."""
    from sklearn.linear_model import LogisticRegression

    probs = np.zeros((len(x_pool), len(schema.names)), np.float32)
    if schema.multi:
        for c in range(len(schema.names)):
            col = y_lab[:, c]
            if 0 < col.sum() < len(col):
                model = LogisticRegression(C=4.0, max_iter=300, random_state=seed)
                probs[:, c] = model.fit(x_lab, col).predict_proba(x_pool)[:, 1]
            else:
                probs[:, c] = col.mean() if len(col) else 0.0
    else:
        y = y_lab.argmax(axis=1)
        model = LogisticRegression(C=4.0, max_iter=300, random_state=seed)
        model.fit(x_lab, y)
        probs[:, model.classes_] = model.predict_proba(x_pool)
    return Scores(pool_ids, schema.names, probs, "classifier", schema.multi)


def model_scores(features: Features, labels: Mapping[int, frozenset[str]], schema: Schema
                 ) -> Scores | None:
    """Suggestions from the labels: the classifier when it can train, else the vote;
    None when nothing is labeled."""
    ids = features.item_ids
    y = targets(labels, ids, schema)
    has = y.sum(axis=1) > 0
    if not has.any():
        return None
    x = feature_matrix(features)
    if classifier_ready(y[has], schema.multi):
        scores = classifier_scores(x, x[has], y[has], ids, schema)
    else:
        scores = knn_scores(x, x[has], y[has], ids, schema)
    # an item sharing no modality with any labeled item (a sound, when only pictures
    # are labeled) gets no suggestion rather than a guess, and counts as most uncertain
    blind = ~(features.present & features.present[has].any(axis=0)).any(axis=1)
    scores.probs[blind] = 0.0
    return scores


def zero_shot_scores(library, schema: Schema, item_ids: Sequence[int], encoders=None
                     ) -> Scores | None:
    """Label names against items, in every space a text tower writes (None if none)."""
    encoders = encoders if encoders is not None else library.encoders()
    text_vectors: dict[str, np.ndarray] = {}
    for encoder in encoders:
        if "text" in encoder.routes:
            text_vectors.update(encoder.encode("text", list(schema.names)))
    inputs = [i for i in available_inputs(library) if i.space in text_vectors]
    if not inputs:
        return None
    features = item_features(library, item_ids, inputs)
    sims = np.zeros((len(features.item_ids), len(schema.names)), np.float32)
    for m, inp in enumerate(features.inputs):
        sims += features.present[:, m, None] * (features.vectors[m] @ text_vectors[inp.space].T)
    n = np.maximum(features.present.sum(axis=1, keepdims=True), 1)
    logits = sims / n / ZS_TEMPERATURE
    if schema.multi:
        probs = 1 / (1 + np.exp(-(logits - logits.mean(axis=1, keepdims=True))))
    else:
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = e / e.sum(axis=1, keepdims=True)
    return Scores(features.item_ids, schema.names, probs.astype(np.float32), "zero-shot",
                  schema.multi)


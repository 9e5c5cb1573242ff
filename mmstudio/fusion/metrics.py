"""What a fusion training run reports, and the metrics it is made of.

The report holds, per method, the cross-validated scores computed from out-of-fold
predictions (each item predicted by the model of the fold that did not see it), the
confusion matrix (rows: true class, columns: predicted, both in schema order), the
ablation (each input dropped at test time), the attention fusion's mean attention per
modality per class and the late fusion's weights, and the out-of-fold predictions
themselves, so a view can list the items of a confusion cell.

Everything here is plain Python and JSON; scikit-learn loads only to compute scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

FUSION_METHODS = ("early", "late", "attention")
PROBE = "probe:"  # a probe's method name is PROBE + its input's name


@dataclass(frozen=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Scores:
    accuracy: float
    macro_f1: float


@dataclass(frozen=True)
class Prediction:
    """One item's out-of-fold prediction."""

    item_id: int
    true: str
    predicted: str
    confidence: float  # the predicted class's probability


@dataclass(frozen=True)
class MethodReport:
    method: str  # "early", "late", "attention", "probe:image:starter-image"
    accuracy: float
    macro_f1: float
    per_class: Mapping[str, ClassScores]
    confusion: tuple[tuple[int, ...], ...]  # rows: true class, columns: predicted
    ablation: Mapping[str, Scores]  # input name -> scores with that input dropped
    predictions: tuple[Prediction, ...]
    seconds: float = 0.0  # cross-validation training time, all folds
    # attention fusion: class -> input -> mean attention of its items (by true class,
    # and by predicted class)
    attention: Mapping[str, Mapping[str, float]] | None = None
    attention_predicted: Mapping[str, Mapping[str, float]] | None = None
    late_weights: Mapping[str, float] | None = None  # late fusion: mean learned weights

    @property
    def is_probe(self) -> bool:
        return self.method.startswith(PROBE)

    def cell(self, true: str, predicted: str) -> list[Prediction]:
        """The items of one confusion cell."""
        return [p for p in self.predictions if p.true == true and p.predicted == predicted]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["confusion"] = [list(r) for r in self.confusion]
        d["predictions"] = [[p.item_id, p.true, p.predicted, p.confidence]
                            for p in self.predictions]  # compact: thousands of items
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MethodReport:
        return cls(
            method=d["method"], accuracy=float(d["accuracy"]), macro_f1=float(d["macro_f1"]),
            per_class={k: ClassScores(**v) for k, v in d["per_class"].items()},
            confusion=tuple(tuple(int(x) for x in r) for r in d["confusion"]),
            ablation={k: Scores(**v) for k, v in d["ablation"].items()},
            predictions=tuple(Prediction(int(p[0]), p[1], p[2], float(p[3]))
                              for p in d["predictions"]),
            seconds=float(d.get("seconds", 0.0)),
            attention=d.get("attention"), attention_predicted=d.get("attention_predicted"),
            late_weights=d.get("late_weights"),
        )


@dataclass(frozen=True)
class FusionReport:
    schema: str
    classes: tuple[str, ...]  # schema order (labels with no labelled item left out)
    inputs: tuple[str, ...]  # input names ("image:starter-image")
    folds: int
    n_items: int
    methods: Mapping[str, MethodReport]
    best: str  # highest cross-validated macro-F1
    version: int | None = None  # the saved models' version (None: not saved)
    hyper: Mapping[str, Any] = field(default_factory=dict)
    created: float = 0.0

    def method(self, name: str) -> MethodReport:
        return self.methods[name]

    @property
    def fusion(self) -> dict[str, MethodReport]:
        return {k: m for k, m in self.methods.items() if not m.is_probe}

    @property
    def probes(self) -> dict[str, MethodReport]:
        return {k: m for k, m in self.methods.items() if m.is_probe}

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "classes": list(self.classes),
                "inputs": list(self.inputs), "folds": self.folds, "n_items": self.n_items,
                "best": self.best, "version": self.version, "hyper": dict(self.hyper),
                "created": self.created,
                "methods": {k: m.to_dict() for k, m in self.methods.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FusionReport:
        return cls(schema=d["schema"], classes=tuple(d["classes"]), inputs=tuple(d["inputs"]),
                   folds=int(d["folds"]), n_items=int(d["n_items"]),
                   methods={k: MethodReport.from_dict(m) for k, m in d["methods"].items()},
                   best=d["best"], version=d.get("version"), hyper=d.get("hyper", {}),
                   created=float(d.get("created", 0.0)))


def scores(true: np.ndarray, predicted: np.ndarray) -> Scores:
    """Accuracy and macro-F1 (over the classes present in either array)."""
    from sklearn.metrics import accuracy_score, f1_score

    return Scores(float(accuracy_score(true, predicted)),
                  float(f1_score(true, predicted, average="macro", zero_division=0)))


def method_report(method: str, classes: Sequence[str], item_ids: np.ndarray,
                  true: np.ndarray, probs: np.ndarray, inputs: Sequence[str],
                  ablated: Mapping[str, np.ndarray], *, seconds: float = 0.0,
                  attention: np.ndarray | None = None, present: np.ndarray | None = None,
                  late_weights: Mapping[str, float] | None = None) -> MethodReport:
    """Scores of one method from its out-of-fold class probabilities.

    true: (N,) class indices; probs: (N, C); ablated: input name -> (N, C) probabilities
    with that input dropped; attention: (N, M) the attention each item's query gave
    each input (zero where missing), averaged per class over the items that have it.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = np.arange(len(classes))
    predicted = probs.argmax(1)
    p, r, f, s = precision_recall_fscore_support(true, predicted, labels=labels,
                                                 zero_division=0)
    per_class = {c: ClassScores(float(p[k]), float(r[k]), float(f[k]), int(s[k]))
                 for k, c in enumerate(classes)}
    overall = scores(true, predicted)
    confusion = confusion_matrix(true, predicted, labels=labels)
    preds = tuple(Prediction(int(i), classes[t], classes[q], float(probs[n, q]))
                  for n, (i, t, q) in enumerate(zip(item_ids, true, predicted, strict=True)))
    by_true = by_predicted = None
    if attention is not None:
        mask = present if present is not None else np.ones_like(attention, bool)
        by_true = mean_attention(attention, mask, true, classes, inputs)
        by_predicted = mean_attention(attention, mask, predicted, classes, inputs)
    return MethodReport(
        method=method, accuracy=overall.accuracy, macro_f1=overall.macro_f1,
        per_class=per_class, confusion=tuple(tuple(int(x) for x in row) for row in confusion),
        ablation={name: scores(true, a.argmax(1)) for name, a in ablated.items()},
        predictions=preds, seconds=seconds, attention=by_true,
        attention_predicted=by_predicted,
        late_weights=dict(late_weights) if late_weights is not None else None)


def mean_attention(attention: np.ndarray, present: np.ndarray, groups: np.ndarray,
                   classes: Sequence[str], inputs: Sequence[str]) -> dict[str, dict[str, float]]:
    """class -> input -> mean attention over the class's items that have the input
    (an item cannot attend to a modality it lacks; counting its zero would make a
    modality that is often missing look ignored). Classes without items are left out."""
    out: dict[str, dict[str, float]] = {}
    for k, c in enumerate(classes):
        rows = groups == k
        if not rows.any():
            continue
        out[c] = {}
        for m, name in enumerate(inputs):
            have = rows & present[:, m]
            out[c][name] = float(attention[have, m].mean()) if have.any() else 0.0
    return out

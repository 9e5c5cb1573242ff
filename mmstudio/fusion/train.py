"""Train fusion classifiers on stored item embeddings, cross-validated, and keep them.

`train_features` is the pure part: given per-item modality vectors (`Features`) and
one label per item, it cross-validates each method (stratified k-fold: every item is
predicted once by a model that did not see it), scores the out-of-fold predictions,
and refits each method on all items. `train` is the library job around it: it reads
the labels and the vectors, saves the refitted models as a new version and writes the
best method's predictions back as label suggestions.

Nothing is re-encoded: the vectors come from the store. Training is seeded and runs
in a forked torch RNG, so a run is reproducible and leaves the caller's RNG alone.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from mmstudio.core.errors import MmstudioError
from mmstudio.core.jobs import CancelToken, Progress, ProgressCallback, no_progress
from mmstudio.fusion.features import Features, Input, item_features
from mmstudio.fusion.metrics import (
    FUSION_METHODS,
    PROBE,
    FusionReport,
    MethodReport,
    method_report,
)

if TYPE_CHECKING:
    from mmstudio.fusion.models import FusionModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hyper:
    """Training settings (saved with the models)."""

    epochs: int = 40
    batch_size: int = 64  # 0: the whole training set in one batch
    lr: float = 3e-3
    weight_decay: float = 1e-2
    hidden: int = 256  # early fusion's hidden layer
    dropout: float = 0.2
    d_model: int = 64  # attention fusion's token width
    heads: int = 4
    late_weights: str = "learned"  # or "equal"
    balanced: bool = True  # class-balanced loss: rare labels count as much as common ones
    seed: int = 0

    def __post_init__(self) -> None:
        if self.late_weights not in ("learned", "equal"):
            raise MmstudioError("late fusion weights are 'learned' or 'equal'")
        if self.epochs < 1 or self.d_model % self.heads:
            raise MmstudioError("epochs must be 1 or more and d_model a multiple of heads")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Hyper:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def model_kwargs(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "dropout": self.dropout, "d_model": self.d_model,
                "heads": self.heads, "late_weights": self.late_weights}


@dataclass(frozen=True)
class Trained:
    """A cross-validated report and each method refitted on all the items."""

    report: FusionReport
    inputs: tuple[Input, ...]
    dims: tuple[int, ...]
    hyper: Hyper
    models: Mapping[str, FusionModel] = field(default_factory=dict)


def resolve_methods(methods: str | Sequence[str], inputs: Sequence[str]) -> list[str]:
    """"all" (every probe and every fusion method), "probes", or a list of
    "early", "late", "attention", "probe:INPUT"; probes first, then fusion methods."""
    wanted = [methods] if isinstance(methods, str) else list(methods)
    probes = [PROBE + name for name in inputs]
    chosen: list[str] = []
    for name in wanted:
        name = name.strip()
        if name == "all":
            chosen += probes + list(FUSION_METHODS)
        elif name == "probes":
            chosen += probes
        elif name in FUSION_METHODS or name in probes:
            chosen.append(name)
        else:
            raise MmstudioError(f"unknown fusion method {name!r}: choose from all, probes, "
                                f"{', '.join(FUSION_METHODS)}, {', '.join(probes)}")
    chosen = list(dict.fromkeys(chosen))
    return sorted(chosen, key=lambda m: (not m.startswith(PROBE), chosen.index(m)))


def train_features(features: Features, targets: Sequence[str], classes: Sequence[str],
                   methods: str | Sequence[str] = "all", *, folds: int = 5,
                   hyper: Hyper | None = None, refit: bool = True, schema: str = "",
                   progress: ProgressCallback = no_progress,
                   cancel: CancelToken | None = None) -> Trained:
    """Cross-validate `methods` on these items (one label each, a name from `classes`),
    then refit each on all of them (unless `refit` is False).

    Labels of `classes` that no item carries are left out; a label with a single item
    is an error (stratified folds need two)."""
    hyper = hyper or Hyper()
    names = features.names
    methods = resolve_methods(methods, names)
    if len(targets) != len(features.item_ids):
        raise ValueError(f"{len(targets)} targets for {len(features.item_ids)} items")
    unknown = sorted(set(targets) - set(classes))
    if unknown:
        raise MmstudioError(f"labels {', '.join(unknown)} are not in the schema")
    counts = {c: sum(1 for t in targets if t == c) for c in classes}
    classes = tuple(c for c in classes if counts[c])
    lonely = [c for c in classes if counts[c] < 2]
    if lonely:
        raise MmstudioError(f"label {lonely[0]!r} has only one labelled item with vectors; "
                            "cross-validation needs at least 2 per label: label more items "
                            "with it or leave it out")
    if len(classes) < 2:
        raise MmstudioError("fusion needs at least two labels with labelled items")
    k = min(folds, min(counts[c] for c in classes))
    if k < 2:
        raise MmstudioError("folds must be 2 or more")
    if k < folds:
        log.info("%d folds instead of %d: the rarest label has %d items", k, folds, k)
    y = np.array([classes.index(t) for t in targets], dtype=np.int64)
    from sklearn.model_selection import StratifiedKFold

    splits = list(StratifiedKFold(k, shuffle=True, random_state=hyper.seed).split(y, y))
    total = len(methods) * (k + int(refit))
    done = 0
    dims = tuple(v.shape[1] for v in features.vectors)
    reports: dict[str, MethodReport] = {}
    for method in methods:
        started = time.perf_counter()
        probs = np.zeros((len(y), len(classes)), np.float32)
        ablated = {name: np.zeros_like(probs) for name in names}
        attention = np.zeros(features.present.shape, np.float32) if method == "attention" else None
        weights = []
        for fold, (train_rows, test_rows) in enumerate(splits):
            model = fit(method, features.rows(train_rows), y[train_rows], len(classes), hyper,
                        seed=hyper.seed + fold, cancel=cancel)
            test = features.rows(test_rows)
            probs[test_rows], att = predict_probs(model, test)
            if attention is not None:
                attention[test_rows] = att
            for m, name in enumerate(names):
                ablated[name][test_rows] = predict_probs(model, drop(test, m))[0]
            if method == "late":
                weights.append(model.weights().detach().numpy())
            done += 1
            progress(Progress(done, total, f"{method}: fold {fold + 1} of {k}"))
        late = (dict(zip(names, np.mean(weights, 0).astype(float).tolist(), strict=True))
                if weights else None)
        reports[method] = method_report(
            method, classes, features.item_ids, y, probs, names, ablated,
            seconds=time.perf_counter() - started, attention=attention,
            present=features.present, late_weights=late)
        log.info("%s: accuracy %.3f, macro-F1 %.3f", method, reports[method].accuracy,
                 reports[method].macro_f1)
    best = max(methods, key=lambda m: (reports[m].macro_f1, reports[m].accuracy,
                                        not m.startswith(PROBE)))
    models: dict[str, FusionModel] = {}
    if refit:
        for method in methods:
            models[method] = fit(method, features, y, len(classes), hyper, seed=hyper.seed,
                                 cancel=cancel)
            done += 1
            progress(Progress(done, total, f"{method}: all items"))
    report = FusionReport(schema=schema, classes=classes, inputs=names, folds=k,
                          n_items=len(y), methods=reports, best=best, hyper=hyper.to_dict(),
                          created=time.time())
    return Trained(report, features.inputs, dims, hyper, models)


def drop(features: Features, m: int) -> Features:
    """The same items with input m missing (as if they never had it)."""
    present = features.present.copy()
    present[:, m] = False
    vectors = tuple(np.zeros_like(v) if i == m else v for i, v in enumerate(features.vectors))
    return Features(features.item_ids, features.inputs, vectors, present)


def _tensors(features: Features):
    import torch

    return ([torch.from_numpy(np.ascontiguousarray(v, np.float32)) for v in features.vectors],
            torch.from_numpy(np.ascontiguousarray(features.present, bool)))


def fit(method: str, features: Features, y: np.ndarray, n_classes: int, hyper: Hyper, *,
        seed: int = 0, cancel: CancelToken | None = None) -> FusionModel:
    """One model of `method` trained on these items (class indices `y`)."""
    import torch
    from torch.nn import functional as F

    from mmstudio.fusion.models import build

    xs, present = _tensors(features)
    target = torch.from_numpy(np.asarray(y, np.int64))
    counts = torch.bincount(target, minlength=n_classes).float()
    weight = None
    if hyper.balanced:  # n / (C * count): every label weighs as much in the loss
        weight = torch.where(counts > 0, len(target) / (n_classes * counts.clamp_min(1)),
                             torch.zeros_like(counts))
    n = len(target)
    batch = hyper.batch_size if 0 < hyper.batch_size < n else n
    steps = hyper.epochs * math.ceil(n / batch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build(method, features.names, [x.shape[1] for x in xs], n_classes,
                      **hyper.model_kwargs())
        model.fit_scaling(xs, present)
        optimiser = torch.optim.AdamW(model.parameters(), lr=hyper.lr,
                                      weight_decay=hyper.weight_decay)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
        order_rng = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(hyper.epochs):
            if cancel is not None:
                cancel.raise_if_cancelled()
            order = torch.randperm(n, generator=order_rng) if batch < n else torch.arange(n)
            for lo in range(0, n, batch):
                rows = order[lo : lo + batch]
                loss = F.nll_loss(model([x[rows] for x in xs], present[rows]), target[rows],
                                  weight=weight)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
        model.eval()
    return model


def predict_probs(model: FusionModel, features: Features) -> tuple[np.ndarray, np.ndarray | None]:
    """(class probabilities (N, C), attention over inputs (N, M) for attention fusion)."""
    import torch

    from mmstudio.fusion.models import AttentionFusion

    xs, present = _tensors(features)
    model.eval()
    with torch.no_grad():
        if isinstance(model, AttentionFusion):
            logp, attention = model.forward_with_attention(xs, present)
            return logp.exp().numpy(), attention.numpy()
        return model(xs, present).exp().numpy(), None


def train(library, schema: str, methods: str | Sequence[str] = "all",
          inputs: Sequence[Input | str] | None = None, folds: int = 5,
          hyper: Hyper | None = None, *, progress: ProgressCallback = no_progress,
          cancel: CancelToken | None = None) -> FusionReport:
    """Train fusion classifiers on a schema's labelled items and keep them.

    Cross-validates `methods` (see `resolve_methods`) on the items with one label and
    vectors, saves every method refitted on all of them as version N+1 under
    `<library>/models/fusion/<schema>/`, and writes the best method's prediction for
    every item with vectors back as a suggestion ("fusion:<method>:v<N>").
    """
    from mmstudio.fusion import saved
    from mmstudio.labels.store import Suggestion

    s = library.labels.schema(schema)
    if s.multi:
        raise MmstudioError(f"fusion trains single-label schemas; {schema!r} is multi-label")
    labelled = {i: next(iter(v)) for i, v in library.labels.labels(schema).items() if len(v) == 1}
    if not labelled:
        raise MmstudioError(f"no item carries a label of {schema!r} yet: label some first")
    chosen = None if inputs is None else [i if isinstance(i, Input) else Input.parse(i)
                                          for i in inputs]
    # reading vectors shows as a message at 0 %: the bar then runs once, over the folds
    features = item_features(library, sorted(labelled), chosen, cancel=cancel,
                             progress=lambda p: progress(Progress(0, 1, p.message)))
    have = features.present.any(1)
    if not have.all():
        log.info("%d labelled items have no vectors of %s: left out", int((~have).sum()),
                 ", ".join(features.names))
    features = features.rows(np.flatnonzero(have))
    # an input no labelled item has (texts in a schema of pictures) teaches nothing
    used = features.present.any(0)
    if not used.all():
        log.info("no labelled item has %s: left out",
                 ", ".join(n for n, u in zip(features.names, used, strict=True) if not u))
        features = features.only(np.flatnonzero(used))
    targets = [labelled[int(i)] for i in features.item_ids]
    trained = train_features(features, targets, s.names, methods, folds=folds, hyper=hyper,
                             schema=schema, progress=progress, cancel=cancel)
    everything = item_features(library, None, features.inputs, cancel=cancel)
    everything = everything.rows(np.flatnonzero(everything.present.any(1)))
    if cancel is not None:
        cancel.raise_if_cancelled()
    report = saved.save(library, schema, trained)
    best = report.best
    probs, _ = predict_probs(trained.models[best], everything)
    source = f"fusion:{best}:v{report.version}"
    classes = report.classes
    library.labels.set_suggestions(schema, {
        int(i): Suggestion(classes[int(p.argmax())], float(p.max()), source)
        for i, p in zip(everything.item_ids, probs, strict=True)})
    log.info("fusion v%d of %r: best %s (macro-F1 %.3f); %d suggestions", report.version,
             schema, best, report.methods[best].macro_f1, len(everything.item_ids))
    return report

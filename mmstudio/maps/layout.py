"""A map layout: every item of one space as a 2-D point, and how new items join it.

PCA is linear, so a new item lands exactly where a full fit with the same basis would
put it. UMAP has no such formula once the fitted model is gone (it is not cached: a
pickled model is code, and a library folder is not a trusted place for code), so a new
item lands at the similarity-weighted mean of its nearest anchors: up to `ANCHORS`
fitted items whose vectors the cache keeps in float16. Either way the points already
on the map never move; `Recompute` fits a fresh layout when enough has changed.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, replace

import numpy as np

from mmstudio.core.errors import MmstudioError
from mmstudio.core.jobs import CancelToken, Progress, ProgressCallback, no_progress

METHODS = ("pca", "umap")
METHOD_NAMES = {"pca": "PCA", "umap": "UMAP"}
# Fitted items kept (float16) to place later items of a UMAP layout.
ANCHORS = 10_000
# UMAP fits on at most this many items (a random sample); the rest are placed like
# later items. UMAP on 50,000 items takes a few minutes on a laptop's CPU.
UMAP_FIT_MAX = 50_000
# Neighbours that place a new item, and how sharply their similarity weighs.
KNN = 8
KNN_TEMPERATURE = 0.02
PLACE_BATCH = 2048


def umap_missing() -> str | None:
    """Why UMAP cannot run here, or None when it can."""
    if importlib.util.find_spec("umap") is None:
        return "UMAP needs the optional umap-learn package: pip install 'mmstudio[umap]'"
    return None


@dataclass(frozen=True)
class Layout:
    """The points of one space's items; rows of `item_ids` and `xy` go together."""

    space: str
    method: str
    item_ids: np.ndarray  # (N,) int64
    xy: np.ndarray  # (N, 2) float32
    mean: np.ndarray  # (d,) float32: PCA's centre (zeros for UMAP)
    basis: np.ndarray  # (2, d) float32: PCA's components ((0, d) for UMAP)
    anchor_xy: np.ndarray  # (A, 2) float32: where the anchors lie (UMAP)
    anchors: np.ndarray  # (A, d) float16: their unit vectors (UMAP)
    anchor_ids: np.ndarray  # (A,) int64: their items, so a removed item stops placing others
    segments: np.ndarray  # (N,) int32: segments each point averages (fewer: a file left)
    fitted: int  # items the layout was fitted on
    placed: int  # items placed on it since (new ones; not those placed again)
    stamp: float  # the newest indexing time among the items read (catalog's indexed_at)

    def __len__(self) -> int:
        return len(self.item_ids)

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def place(self, vectors: np.ndarray) -> np.ndarray:
        """(n, d) unit vectors -> (n, 2) positions on this layout, without refitting."""
        vectors = np.asarray(vectors, np.float32).reshape(-1, self.dim)
        if self.method == "pca":
            return ((vectors - self.mean) @ self.basis.T).astype(np.float32)
        return knn_place(vectors, self.anchors, self.anchor_xy)

    def merged(self, item_ids: np.ndarray, xy: np.ndarray, segments: np.ndarray,
               removed: np.ndarray, stamp: float) -> Layout:
        """This layout with items placed (new, or moved after their files changed) and
        some gone; `segments`: how many segments each placed item's point averages."""
        item_ids = np.asarray(item_ids, np.int64)
        new = int((~np.isin(item_ids, self.item_ids)).sum())
        drop = np.isin(self.item_ids, np.concatenate([np.asarray(removed, np.int64), item_ids]))
        keep_anchor = ~np.isin(self.anchor_ids, removed) if len(self.anchors) else slice(None)
        return replace(
            self,
            item_ids=np.concatenate([self.item_ids[~drop], item_ids]),
            xy=np.concatenate([self.xy[~drop], np.asarray(xy, np.float32).reshape(-1, 2)]),
            anchors=self.anchors[keep_anchor], anchor_xy=self.anchor_xy[keep_anchor],
            anchor_ids=self.anchor_ids[keep_anchor],
            segments=np.concatenate([self.segments[~drop], np.asarray(segments, np.int32)]),
            placed=self.placed + new, stamp=max(self.stamp, stamp))


def knn_place(vectors: np.ndarray, anchors: np.ndarray, anchor_xy: np.ndarray) -> np.ndarray:
    """Each vector at the softmax-weighted mean position of its KNN most similar anchors."""
    if len(anchors) == 0:
        return np.zeros((len(vectors), 2), np.float32)
    k = min(KNN, len(anchors))
    out = np.empty((len(vectors), 2), np.float32)
    columns = anchors.T.astype(np.float32)  # once, not per batch (they are kept float16)
    for lo in range(0, len(vectors), PLACE_BATCH):
        sims = vectors[lo : lo + PLACE_BATCH] @ columns
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < sims.shape[1] else \
            np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
        near = np.take_along_axis(sims, top, axis=1)
        weights = np.exp((near - near.max(axis=1, keepdims=True)) / KNN_TEMPERATURE)
        weights /= weights.sum(axis=1, keepdims=True)
        out[lo : lo + PLACE_BATCH] = np.einsum("nk,nkc->nc", weights, anchor_xy[top])
    return out


def fit(space: str, item_ids: np.ndarray, vectors: np.ndarray, method: str = "pca", *,
        seed: int | None = 0, stamp: float = 0.0, segments: np.ndarray | None = None,
        progress: ProgressCallback = no_progress, cancel: CancelToken | None = None
        ) -> Layout:
    """Fit a layout on these items' unit vectors (N, d); `segments`: how many segments
    each item's vector averages (one each when not given).

    seed: UMAP's random state (None lets UMAP run its threads in parallel, at the price
    of a layout that differs from run to run). A UMAP fit runs in a child process
    (`umap_worker`) and stops soon after `cancel` is set.
    """
    if method not in METHODS:
        raise MmstudioError(f"unknown map method {method!r}; use {' or '.join(METHODS)}")
    item_ids = np.asarray(item_ids, np.int64)
    vectors = np.asarray(vectors, np.float32)
    n, d = vectors.shape if vectors.ndim == 2 else (0, 0)
    if n == 0:
        raise MmstudioError(f"no item has a vector in {space!r}: index some files first")
    empty_anchors = (np.zeros((0, 2), np.float32), np.zeros((0, d), np.float16),
                     np.zeros(0, np.int64))
    if method == "pca":
        mean, basis = _pca(vectors)
        xy = ((vectors - mean) @ basis.T).astype(np.float32)
        anchor_xy, anchors, anchor_ids = empty_anchors
    else:
        xy, anchor_xy, anchors, anchor_ids = _umap(item_ids, vectors, seed, progress, cancel)
        mean, basis = np.zeros(d, np.float32), np.zeros((0, d), np.float32)
    return Layout(space=space, method=method, item_ids=item_ids, xy=xy, mean=mean,
                  basis=basis, anchor_xy=anchor_xy, anchors=anchors, anchor_ids=anchor_ids,
                  segments=np.ones(n, np.int32) if segments is None
                  else np.asarray(segments, np.int32), fitted=n, placed=0, stamp=stamp)


def _pca(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = vectors.mean(axis=0).astype(np.float32)
    if len(vectors) < 3:  # too few for two components; the points still get places
        basis = np.zeros((2, vectors.shape[1]), np.float32)
        if len(vectors) == 2 and np.any(vectors[0] != vectors[1]):
            direction = vectors[1] - vectors[0]
            basis[0] = direction / np.linalg.norm(direction)
        return mean, basis
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, svd_solver="full" if len(vectors) < 1000 else "auto",
              random_state=0).fit(vectors)
    basis = np.zeros((2, vectors.shape[1]), np.float32)
    basis[: len(pca.components_)] = pca.components_
    return pca.mean_.astype(np.float32), basis


def _umap(item_ids, vectors, seed, progress, cancel):
    if (missing := umap_missing()) is not None:
        raise MmstudioError(missing)
    n = len(vectors)
    if n < 5:
        raise MmstudioError(f"UMAP needs at least 5 items; this space has {n}. Use PCA.")
    from mmstudio.maps.umap_worker import fit_umap

    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, UMAP_FIT_MAX, replace=False)) if n > UMAP_FIT_MAX \
        else np.arange(n)
    progress(Progress(0, 0, f"fitting UMAP on {len(sample):,} items"))
    params = {"n_neighbors": min(15, len(sample) - 1), "min_dist": 0.1, "metric": "cosine",
              "random_state": seed, "n_jobs": 1 if seed is not None else -1,
              "init": "spectral" if len(sample) > 16 else "random"}
    fitted_xy = fit_umap(vectors[sample], params, progress=progress, cancel=cancel)
    xy = np.zeros((n, 2), np.float32)
    xy[sample] = fitted_xy
    if len(sample) < n:
        rest = np.setdiff1d(np.arange(n), sample)
        progress(Progress(0, 0, f"placing the other {len(rest):,} items"))
        xy[rest] = knn_place(vectors[rest], vectors[sample], fitted_xy)
    keep = np.sort(rng.choice(len(sample), ANCHORS, replace=False)) if len(sample) > ANCHORS \
        else np.arange(len(sample))
    rows = sample[keep]
    return xy, fitted_xy[keep], vectors[rows].astype(np.float16), item_ids[rows]

"""Search: a query (text or file) → every space that accepts it → fused item ranking.

The query is encoded in every space the library's encoders write for its kind (a
picture goes to `starter` through ConSE and to `starter-image`; a sentence to
`starter`); each space is queried once (one batch); hits are segments, collapsed to
their item (its best segment per space); the per-space item rankings are fused by
reciprocal rank fusion (Cormack et al. 2009), which needs no calibration between
spaces whose similarities are not comparable.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mmstudio.core import media
from mmstudio.core.catalog import SegmentRecord
from mmstudio.core.errors import MediaError, MmstudioError
from mmstudio.core.jobs import CancelToken, ProgressCallback
from mmstudio.core.library import Library
from mmstudio.core.scan import not_regular
from mmstudio.core.segments import MODALITIES
from mmstudio.encoders.base import Encoder, l2_normalise
from mmstudio.encoders.profiles import audio_rate

RRF_K = 60
# Segments fetched per space for each result asked: items with many segments (a long
# video) take several hits, so ask for more than the items wanted.
OVERFETCH = 10
MAX_FETCH = 2000
# A file used as a query is summarised by at most this many segments per kind, drawn
# evenly at random from the whole file (reservoir sampling), in their order.
MAX_QUERY_SEGMENTS = 32


@dataclass(frozen=True)
class SearchQuery:
    text: str | None = None
    path: Path | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.path is None):
            raise ValueError("a query is either text or a file")

    @property
    def label(self) -> str:
        return self.text if self.text is not None else str(self.path)


@dataclass(frozen=True)
class SearchResult:
    """One item found. The moment (start/end, or a character span) is its best segment.

    score: the fused rank score, scaled so that an item ranked first in every space
    searched scores 1.0. similarity: the cosine similarity of the best segment in
    `space`, the space where the item ranked best.
    """

    item_id: int
    path: str
    modality: str
    score: float
    similarity: float
    space: str
    segment_id: int
    start: float | None
    end: float | None
    char_start: int | None
    char_end: int | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def encode_query(
    query: SearchQuery,
    encoders: Sequence[Encoder],
    options: media.DecodeOptions | None = None,
) -> dict[str, np.ndarray]:
    """The query's vector in every space that accepts it: {space: unit vector}."""
    if query.text is not None:
        text = query.text.strip()
        if not text:
            raise MmstudioError("the query is empty: type some text or give a file")
        by_kind: dict[str, list[object]] = {"text": [text]}
    else:
        path = Path(query.path).expanduser()
        if not path.exists():
            raise MediaError(path, "not found")
        if reason := not_regular(path.stat().st_mode):  # a FIFO would wait for ever
            raise MediaError(path, reason)
        if media.modality_of(path) is None:
            raise MediaError(path, "not a file type mmstudio reads")
        by_kind = _sample_segments(
            media.decode(path, options or media.DecodeOptions(audio_rate=audio_rate(encoders)))
        )
    sums: dict[str, list[np.ndarray]] = defaultdict(list)
    for kind, items in by_kind.items():
        for encoder in encoders:
            if kind in encoder.routes:
                for space, vectors in encoder.encode(kind, items).items():
                    sums[space].append(vectors)
    if not sums:
        raise MmstudioError(f"no encoder in this library's profiles reads {query.label!r}")
    return {
        space: l2_normalise(np.concatenate(parts).mean(axis=0, keepdims=True))[0]
        for space, parts in sums.items()
    }


def _sample_segments(segments, k: int = MAX_QUERY_SEGMENTS, seed: int = 0) -> dict[str, list]:
    """Up to k segments per kind from anywhere in the file, kept in file order."""
    rng = np.random.default_rng(seed)
    kept: dict[str, list[tuple[int, object]]] = defaultdict(list)
    seen: dict[str, int] = defaultdict(int)
    for seg in segments:
        n = seen[seg.kind]
        seen[seg.kind] += 1
        if n < k:
            kept[seg.kind].append((n, seg.data))
        elif (j := int(rng.integers(0, n + 1))) < k:
            kept[seg.kind][j] = (n, seg.data)
    return {kind: [data for _, data in sorted(items, key=lambda p: p[0])]
            for kind, items in kept.items()}


def search(
    library: Library,
    query: SearchQuery,
    *,
    encoders: Sequence[Encoder] | None = None,
    modalities: Sequence[str] | None = None,
    limit: int = 20,
    exact: bool = False,
    vectors: Mapping[str, np.ndarray] | None = None,
) -> list[SearchResult]:
    """The items closest to the query, best first.

    vectors: the query already encoded (`encode_query`), to search again without
    encoding it again.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    for m in modalities or ():
        if m not in MODALITIES:
            raise MmstudioError(f"unknown modality {m!r}; use {', '.join(MODALITIES)}")
    if vectors is None:
        encoders = list(encoders) if encoders is not None else library.encoders()
        vectors = encode_query(query, encoders)
    fetch = min(max(limit * OVERFETCH, 100), MAX_FETCH)
    hits = library.store.search(vectors, fetch, modalities=modalities, exact=exact)
    resolved = library.catalog.resolve([h.id for space_hits in hits.values() for h in space_hits])
    return fuse(hits, resolved, limit)


@dataclass(frozen=True)
class SearchOutcome:
    """A search as a job returns it: the results and the query's vectors (for moments).

    query None: items shown as results without a search (a confusion-matrix cell)."""

    query: SearchQuery | None
    results: list[SearchResult]
    vectors: dict[str, np.ndarray] = field(repr=False)
    seconds: float


def search_job(
    library: Library,
    query: SearchQuery,
    *,
    modalities: Sequence[str] | None = None,
    limit: int = 200,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> SearchOutcome:
    """`search` as a job (progress, cancel): encodes the query once and keeps its vectors."""
    started = time.perf_counter()
    encoders = library.encoders()  # may load models the first time: a job, never the GUI
    if cancel is not None:
        cancel.raise_if_cancelled()
    vectors = encode_query(query, encoders)
    if cancel is not None:
        cancel.raise_if_cancelled()
    results = search(library, query, modalities=modalities, limit=limit, vectors=vectors)
    return SearchOutcome(query, results, vectors, time.perf_counter() - started)


def fuse(hits, resolved: dict[int, SegmentRecord], limit: int) -> list[SearchResult]:
    """Collapse each space's segment hits to items, then reciprocal-rank-fuse the spaces."""
    fused: dict[int, float] = defaultdict(float)
    best: dict[int, tuple[int, float, str, SegmentRecord]] = {}
    for space, space_hits in hits.items():
        rank = 0
        seen: set[int] = set()
        for hit in space_hits:
            rec = resolved.get(hit.id)
            if rec is None or rec.item_id in seen:  # gone from the catalog, or not its best
                continue
            seen.add(rec.item_id)
            rank += 1
            fused[rec.item_id] += 1.0 / (RRF_K + rank)
            candidate = (rank, -hit.score, space, rec)
            if rec.item_id not in best or candidate[:2] < best[rec.item_id][:2]:
                best[rec.item_id] = candidate
    top = 1.0 / (RRF_K + 1) * max(len(hits), 1)
    order = sorted(fused, key=lambda item: (-fused[item], best[item][:2]))
    results = []
    for item in order[:limit]:
        _, neg_sim, space, rec = best[item]
        results.append(SearchResult(
            item_id=item, path=rec.path, modality=rec.modality, score=fused[item] / top,
            similarity=-neg_sim, space=space, segment_id=rec.id, start=rec.start, end=rec.end,
            char_start=rec.char_start, char_end=rec.char_end,
        ))
    return results

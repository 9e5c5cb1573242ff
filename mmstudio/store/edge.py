"""The embedded vector store: one Qdrant Edge shard per library.

One point per segment; each point carries a named vector for every space that
segment was encoded in (an image has `starter` and `starter-image`, an audio window
only `starter-audio`), and the payload needed to filter: item id, segment id, file
id, modality, start, end, labels. Spaces are added to an existing shard as named
vectors, so a library grows new spaces without a rebuild.

HNSW is built with more links and candidates than Qdrant's defaults (m 32,
ef_construct 200) and searched with ef 128: recall matters more to a person looking
for a file than the last millisecond does (see the search benchmark).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    HasVectorCondition,
    HnswIndexConfig,
    MatchAny,
    PayloadSchemaType,
    Point,
    PointVectors,
    Query,
    QueryBatchRequest,
    QueryRequest,
    SearchParams,
    UpdateOperation,
)

from mmstudio.core.errors import MmstudioError

log = logging.getLogger(__name__)

HNSW_M = 32
HNSW_EF_CONSTRUCT = 200
HNSW_EF_SEARCH = 128
UPSERT_BATCH = 256
# Keyword fields searches filter on; integer fields for bulk deletes.
KEYWORD_FIELDS = ("modality", "labels")
INTEGER_FIELDS = ("item_id", "file_id")


@dataclass(frozen=True)
class StoredPoint:
    id: int
    vectors: Mapping[str, np.ndarray]
    payload: Mapping[str, object]


@dataclass(frozen=True)
class Hit:
    id: int
    score: float


class EdgeStore:
    """A Qdrant Edge shard in `path`. Not process-safe: the library lock guards it."""

    def __init__(self, path: Path, dims: Mapping[str, int] | None = None) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._shard: EdgeShard | None = None
        self._dims: dict[str, int] = {}
        if (self.path / "edge_config.json").exists():
            self._shard = EdgeShard.load(str(self.path))
            self._dims = self._read_dims()
        # An Edge shard needs a vector to exist: a new library gets its shard when the
        # first job declares its spaces.
        if dims:
            self.ensure_spaces(dims)

    def _create(self, dims: Mapping[str, int]) -> EdgeShard:
        self.path.mkdir(parents=True, exist_ok=True)
        hnsw = HnswIndexConfig(m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT, full_scan_threshold=10_000)
        config = EdgeConfig(vectors={n: _params(d) for n, d in dims.items()}, hnsw_config=hnsw)
        shard = EdgeShard.create(str(self.path), config)
        for field in KEYWORD_FIELDS:
            shard.update(UpdateOperation.create_field_index(field, PayloadSchemaType.Keyword))
        for field in INTEGER_FIELDS:
            shard.update(UpdateOperation.create_field_index(field, PayloadSchemaType.Integer))
        return shard

    def _read_dims(self) -> dict[str, int]:
        config = json.loads((self.path / "edge_config.json").read_text())
        return {name: int(params["size"]) for name, params in config.get("vectors", {}).items()}

    @property
    def spaces(self) -> dict[str, int]:
        return dict(self._dims)

    def ensure_spaces(self, dims: Mapping[str, int]) -> None:
        """Add the named vectors this shard does not have yet."""
        with self._lock:
            if self._shard is None:
                self._shard = self._create(dims)
                self._dims = dict(dims)
                return
            for name, dim in dims.items():
                if name in self._dims:
                    if self._dims[name] != dim:
                        raise MmstudioError(
                            f"space {name!r} in this library holds {self._dims[name]}-d vectors, "
                            f"but the encoder writes {dim}-d: two models share one space name"
                        )
                    continue
                self._shard.update(UpdateOperation.create_dense_vector(name, dim, Distance.Cosine))
                self._dims[name] = dim

    # -- writing -------------------------------------------------------------------

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        if points and self._shard is None:
            raise RuntimeError("declare the spaces (ensure_spaces) before writing points")
        with self._lock:
            for lo in range(0, len(points), UPSERT_BATCH):
                batch = [
                    Point(
                        p.id,
                        {space: np.asarray(v, dtype=np.float32).tolist() for space, v in p.vectors.items()},
                        dict(p.payload),
                    )
                    for p in points[lo : lo + UPSERT_BATCH]
                ]
                self._shard.update(UpdateOperation.upsert_points(batch))

    def update_vectors(self, points: Sequence[tuple[int, Mapping[str, np.ndarray]]]) -> None:
        """Add or replace some named vectors of existing points, keeping the others."""
        if points and self._shard is None:
            raise RuntimeError("declare the spaces (ensure_spaces) before writing vectors")
        with self._lock:
            for lo in range(0, len(points), UPSERT_BATCH):
                batch = [
                    PointVectors(pid, {s: np.asarray(v, np.float32).tolist() for s, v in vecs.items()})
                    for pid, vecs in points[lo : lo + UPSERT_BATCH]
                ]
                self._shard.update(UpdateOperation.update_vectors(batch))

    def delete_files(self, file_ids: Iterable[int]) -> None:
        ids = list(file_ids)
        if self._shard is None:
            return
        with self._lock:
            for lo in range(0, len(ids), 1000):
                flt = Filter(must=[FieldCondition("file_id", match=MatchAny(ids[lo : lo + 1000]))])
                self._shard.update(UpdateOperation.delete_points_by_filter(flt))

    def flush(self) -> None:
        with self._lock:
            if self._shard is not None:
                self._shard.flush()

    def optimize(self) -> bool:
        """Merge segments and build HNSW indexes now (blocking); True if anything changed."""
        with self._lock:
            return self._shard is not None and bool(self._shard.optimize())

    def close(self) -> None:
        with self._lock:
            if self._shard is not None:
                self._shard.flush()
                self._shard.close()
                self._shard = None

    # -- reading -------------------------------------------------------------------

    def search(
        self,
        queries: Mapping[str, np.ndarray],
        limit: int,
        modalities: Sequence[str] | None = None,
        exact: bool = False,
    ) -> dict[str, list[Hit]]:
        """Nearest points per space: {space: vector} -> {space: hits, best first}."""
        spaces = [s for s in queries if s in self._dims]
        if not spaces:
            return {}
        flt = (
            Filter(must=[FieldCondition("modality", match=MatchAny(list(modalities)))])
            if modalities
            else None
        )
        params = SearchParams(hnsw_ef=max(HNSW_EF_SEARCH, limit), exact=exact)
        requests = [
            QueryRequest(
                limit=limit,
                query=Query.Nearest(np.asarray(queries[s], dtype=np.float32).tolist(), using=s),
                filter=flt,
                params=params,
                with_payload=False,
            )
            for s in spaces
        ]
        with self._lock:
            answers = self._shard.query_batch(QueryBatchRequest(requests))
        return {
            space: [Hit(int(p.id), float(p.score)) for p in answer]
            for space, answer in zip(spaces, answers, strict=True)
        }

    def vectors(self, ids: Sequence[int], space: str) -> dict[int, np.ndarray]:
        """The stored vectors of points `ids` in `space`: {id: float32 vector}.

        Points that do not exist, or have no vector in `space`, are left out.
        """
        if self._shard is None or space not in self._dims:
            return {}
        found: dict[int, np.ndarray] = {}
        wanted = list(dict.fromkeys(int(i) for i in ids))
        for lo in range(0, len(wanted), UPSERT_BATCH):
            with self._lock:  # per batch: a long file does not hold up searches
                records = self._shard.retrieve(
                    wanted[lo : lo + UPSERT_BATCH], with_payload=False, with_vector=[space]
                )
            for record in records:
                vector = (record.vector or {}).get(space) if isinstance(record.vector, dict) else None
                if vector is not None:
                    found[int(record.id)] = np.asarray(vector, dtype=np.float32)
        return found

    def count(self, space: str | None = None) -> int:
        flt = Filter(must=[HasVectorCondition(space)]) if space else None
        if self._shard is None:
            return 0
        with self._lock:
            return int(self._shard.count(CountRequest(exact=True, filter=flt)))

    def stats(self) -> dict[str, object]:
        if self._shard is None:
            return {"points": 0, "indexed_vectors": 0, "segments": 0, "vectors_per_space": {}}
        with self._lock:
            info = self._shard.info()
            return {
                "points": int(info.points_count),
                "indexed_vectors": int(info.indexed_vectors_count),
                "segments": int(info.segments_count),
                "vectors_per_space": {s: self.count(s) for s in sorted(self._dims)},
            }


def _params(dim: int) -> EdgeVectorParams:
    return EdgeVectorParams(size=dim, distance=Distance.Cosine)

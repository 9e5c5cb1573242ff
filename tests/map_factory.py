"""Libraries of generated vectors for the map tests: items written straight into the
catalog and the store (no files decoded), in clusters whose truth the tests know."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmstudio.core.catalog import NewSegment, segment_id
from mmstudio.encoders.base import l2_normalise
from mmstudio.store.edge import StoredPoint

SPACE = "gen"
DIM = 24


def clusters(n_per: int, k: int = 3, dim: int = DIM, spread: float = 0.15,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n_per * k, dim) unit vectors around k random centres, and each one's cluster."""
    rng = np.random.default_rng(seed)
    centres = l2_normalise(rng.normal(size=(k, dim)).astype(np.float32))
    truth = np.repeat(np.arange(k), n_per)
    noise = rng.normal(scale=spread, size=(len(truth), dim)).astype(np.float32)
    return l2_normalise(centres[truth] + noise), truth


def add_items(library, vectors: np.ndarray, *, start: int = 0, modality: str = "image",
              folder: Path = Path("/gen"), segments: int = 1) -> list[int]:
    """One item per vector (`segments` segments each, all with that vector); item ids."""
    library.store.ensure_spaces({SPACE: vectors.shape[1]})
    kind = "text" if modality == "text" else "audio" if modality == "audio" else "image"
    suffix = {"image": ".png", "text": ".txt", "audio": ".wav", "video": ".mp4"}[modality]
    ids, done, points = [], [], []
    for n, vector in enumerate(vectors, start):
        file_id, item_id = library.catalog.begin_file(folder / f"item-{n:06d}{suffix}",
                                                      modality, 1, 1)
        ids.append(item_id)
        segs = [NewSegment(i, kind) for i in range(segments)]
        done.append((file_id, f"h{n}", segs))
        for i in range(segments):
            sid = segment_id(file_id, i)
            points.append(StoredPoint(sid, {SPACE: vector}, {
                "item_id": item_id, "segment_id": sid, "file_id": file_id,
                "modality": modality, "labels": []}))
    library.store.upsert(points)
    library.catalog.finish_files(done, spaces=[SPACE])
    return ids

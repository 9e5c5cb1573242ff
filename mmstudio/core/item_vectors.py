"""An item's vector in a space: the mean of its segments' stored vectors, L2-normalised.

Read from the store, never re-encoded. Shared by the fusion features (one kind of
segment per input) and the embedding map (every segment an item has in the space: a
video's frames average into one point).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmstudio.core.errors import Cancelled
from mmstudio.core.jobs import CancelToken, Progress, ProgressCallback, no_progress
from mmstudio.encoders.base import l2_normalise

# Segments retrieved from the store per request.
BATCH = 2048
# Segments of each kind looked up to learn which kinds a space holds.
PROBE = 16
KINDS = ("image", "text", "audio")


def space_kinds(library, space: str) -> tuple[str, ...]:
    """The kinds of segment (image, text, audio) that have vectors in `space`.

    A file records every space its indexing job wrote, not which of its segments went
    where (a video's sound has no vector in an image space): a few segments of each
    kind are looked up in the store.
    """
    found = []
    for kind in KINDS:
        sample = library.catalog.space_sample(space, kind, PROBE)
        if sample and library.store.vectors(sample, space):
            found.append(kind)
    return tuple(found)


def mean_vectors(store, space: str, pairs: Sequence[tuple[int, int]], rows: int, dim: int, *,
                 progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
                 done: int = 0, total: int | None = None, message: str = "reading vectors"
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(rows, dim) unit vectors and a (rows,) present mask from (row, segment id) pairs.

    A row none of whose segments has a vector in `space` stays zero and not present.
    `done` and `total` place this read inside a longer job's progress.
    """
    total = len(pairs) if total is None else total
    sums = np.zeros((rows, dim), np.float32)
    present = np.zeros(rows, bool)
    for lo in range(0, len(pairs), BATCH):
        if cancel is not None and cancel.cancelled:
            raise Cancelled("cancelled")
        chunk = pairs[lo : lo + BATCH]
        found = store.vectors([s for _, s in chunk], space)
        for row, seg in chunk:
            if (v := found.get(seg)) is not None:
                sums[row] += v
                present[row] = True
        progress(Progress(done + lo + len(chunk), total, message))
    return l2_normalise(sums), present

"""Item embeddings per modality, read from the store (no re-encoding).

An item may carry several modalities: a video's frames and sound track, or same-stem
files (pet.jpg + pet.txt + pet.wav). An `Input` is one modality in one space
("image:starter-image"); an item's vector for it is the mean of the stored vectors
of its segments of that kind, L2-normalised (a video's frames average into one image
vector). Items without segments of a kind have a zero vector and `present` False.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmstudio.core.errors import MmstudioError
from mmstudio.core.item_vectors import mean_vectors, space_kinds
from mmstudio.core.jobs import CancelToken, ProgressCallback, no_progress

KIND_ORDER = ("image", "audio", "text")


@dataclass(frozen=True, order=True)
class Input:
    kind: str  # segment kind: "image" | "audio" | "text"
    space: str

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.space}"

    @classmethod
    def parse(cls, name: str) -> Input:
        kind, _, space = name.partition(":")
        if kind not in KIND_ORDER or not space:
            raise MmstudioError(f"input {name!r} is not KIND:SPACE (e.g. image:starter-image)")
        return cls(kind, space)


@dataclass(frozen=True)
class Features:
    """Per-item modality vectors: rows follow `item_ids`, columns of `present` `inputs`."""

    item_ids: np.ndarray  # (N,) int64
    inputs: tuple[Input, ...]
    vectors: tuple[np.ndarray, ...]  # one (N, d_m) float32 per input, zero rows if missing
    present: np.ndarray  # (N, M) bool

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    def concat(self) -> np.ndarray:
        """(N, sum d_m): the modality vectors side by side (zeros where missing)."""
        return np.concatenate(self.vectors, axis=1) if self.vectors else np.zeros((len(self.item_ids), 0), np.float32)

    def rows(self, index: np.ndarray | Sequence[int]) -> Features:
        index = np.asarray(index)
        return Features(self.item_ids[index], self.inputs, tuple(v[index] for v in self.vectors),
                        self.present[index])

    def only(self, keep: Sequence[int] | np.ndarray) -> Features:
        """These inputs (column indexes) only."""
        keep = [int(m) for m in np.asarray(keep).reshape(-1)]
        return Features(self.item_ids, tuple(self.inputs[m] for m in keep),
                        tuple(self.vectors[m] for m in keep), self.present[:, keep])

    def select(self, ids: Sequence[int]) -> Features:
        """The rows of these item ids, in that order (ids not here are left out)."""
        where = {int(i): r for r, i in enumerate(self.item_ids)}
        return self.rows([where[int(i)] for i in ids if int(i) in where])


def available_inputs(library) -> list[Input]:
    """Every (kind, space) with vectors in this library, kinds in KIND_ORDER."""
    kinds = {space: space_kinds(library, space) for space in sorted(library.store.spaces)}
    return [Input(kind, space) for kind in KIND_ORDER for space in kinds
            if kind in kinds[space]]


def default_inputs(library) -> list[Input]:
    """One space per kind: a model's own space (CLIP, CLAP...) before the starter pack's;
    of the starter's, the kind's native features (`starter-image`) before ConSE."""
    chosen = []
    available = available_inputs(library)
    for kind in KIND_ORDER:
        spaces = [i.space for i in available if i.kind == kind]
        if not spaces:
            continue
        models = [s for s in spaces if not s.startswith("starter")]
        native = f"starter-{kind}"
        space = models[0] if models else native if native in spaces else spaces[0]
        chosen.append(Input(kind, space))
    return chosen


def item_features(library, item_ids: Sequence[int] | None = None,
                  inputs: Sequence[Input] | None = None, *,
                  progress: ProgressCallback = no_progress,
                  cancel: CancelToken | None = None) -> Features:
    """The items' modality vectors (all indexed items when item_ids is None)."""
    inputs = tuple(inputs) if inputs is not None else tuple(default_inputs(library))
    if not inputs:
        raise MmstudioError("this library has no vectors yet: index some files first")
    rows = library.catalog.item_segments(item_ids)
    ids = (np.array(sorted({r[0] for r in rows}), dtype=np.int64) if item_ids is None
           else np.array(list(dict.fromkeys(int(i) for i in item_ids)), dtype=np.int64))
    where = {int(i): r for r, i in enumerate(ids)}
    segments: dict[str, list[tuple[int, int]]] = defaultdict(list)  # kind -> (row, segment)
    for item_id, seg, kind in rows:
        if item_id in where:
            segments[kind].append((where[item_id], seg))
    total = sum(len(segments[i.kind]) for i in inputs)
    done = 0
    vectors, present = [], np.zeros((len(ids), len(inputs)), bool)
    dims = library.store.spaces
    for m, inp in enumerate(inputs):
        if inp.space not in dims:
            raise MmstudioError(f"this library has no space {inp.space!r}")
        pairs = segments.get(inp.kind, [])
        vectors_m, present[:, m] = mean_vectors(
            library.store, inp.space, pairs, len(ids), dims[inp.space], progress=progress,
            cancel=cancel, done=done, total=total, message=f"reading {inp.name} vectors")
        vectors.append(vectors_m)
        done += len(pairs)
    return Features(ids, inputs, tuple(vectors), present)

"""The Encoder protocol shared by every model family.

An encoder takes a batch of inputs of one kind (RGB PIL images, strings, Audio) and
returns, for each space it writes, an (n, dim) float32 array whose rows are
L2-normalised. One forward pass may feed several spaces: the starter image model
gives both its ConSE vector (in the `starter` text space) and its own features (the
`starter-image` space), so an encoder declares the spaces it writes per input kind
instead of being one space each. Vectors of different spaces are never compared.

Encoders load their weights lazily, on the first encode call, never at import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from mmstudio.core.segments import Kind, Payload


@runtime_checkable
class Encoder(Protocol):
    #: a short name for logs and progress ("starter-text", "clip-vit-base-patch32")
    name: str
    #: space name -> vector dimension, for every space this encoder writes
    dims: dict[str, int]
    #: input kind -> the spaces an input of that kind is encoded into
    routes: dict[Kind, tuple[str, ...]]

    def encode(self, kind: Kind, batch: Sequence[Payload]) -> dict[str, np.ndarray]:
        """Encode a batch of one kind; return {space: (len(batch), dim) float32}."""
        ...


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length, as float32 (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, eps)).astype(np.float32, copy=False)

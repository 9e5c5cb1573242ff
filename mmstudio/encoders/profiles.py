"""Named sets of encoders. A library's settings name the profiles it uses.

Encoders are shared per process: ingest, search and (later) explain get the same
objects, so a model loads once. Loading the weights is lazy (first encode).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from mmstudio.core.errors import MmstudioError
from mmstudio.encoders.base import Encoder


def _starter(device: str) -> list[Encoder]:
    from mmstudio.encoders.starter import starter_profile

    return starter_profile(device=device)


PROFILES: dict[str, Callable[[str], list[Encoder]]] = {"starter": _starter}

_cache: dict[tuple[str, str], list[Encoder]] = {}
_cache_lock = threading.Lock()


def load_profiles(names: Sequence[str], device: str = "cpu") -> list[Encoder]:
    """The encoders of the named profiles, created once per (profile, device)."""
    encoders: list[Encoder] = []
    for name in names:
        if name not in PROFILES:
            known = ", ".join(sorted(PROFILES))
            raise MmstudioError(f"unknown profile {name!r}; known profiles: {known}")
        with _cache_lock:
            if (name, device) not in _cache:
                _cache[(name, device)] = PROFILES[name](device)
            encoders.extend(_cache[(name, device)])
    return encoders


def space_dims(encoders: Sequence[Encoder]) -> dict[str, int]:
    dims: dict[str, int] = {}
    for encoder in encoders:
        dims.update(encoder.dims)
    return dims

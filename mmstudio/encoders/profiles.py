"""Named sets of encoders. A library's settings name the profiles it uses.

A profile spec is `NAME` or `NAME:MODEL`: `starter`, `clip` (the library's chosen
CLIP-family checkpoint, else openai/clip-vit-base-patch32), `clip:google/siglip-base-
patch16-224`, `clap`, `clap:/models/my-clap`. Encoders are shared per process: ingest,
search and (later) explain get the same objects, so a model loads once. Loading the
weights is lazy (first encode).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from mmstudio.core.errors import MmstudioError
from mmstudio.encoders.base import Encoder
from mmstudio.encoders.models import DEFAULT_MODELS


def _starter(device: str, ref: str | None) -> list[Encoder]:
    from mmstudio.encoders.device import pick_device
    from mmstudio.encoders.starter import starter_profile

    return starter_profile(device=pick_device(device))


def _clip(device: str, ref: str | None) -> list[Encoder]:
    from mmstudio.encoders.hf_clip import ClipEncoder

    return [ClipEncoder(ref or DEFAULT_MODELS["clip"], device=device)]


def _clap(device: str, ref: str | None) -> list[Encoder]:
    from mmstudio.encoders.hf_clap import ClapEncoder

    return [ClapEncoder(ref or DEFAULT_MODELS["clap"], device=device)]


PROFILES: dict[str, Callable[[str, str | None], list[Encoder]]] = {
    "starter": _starter,
    "clip": _clip,
    "clap": _clap,
}

_cache: dict[tuple[str, str | None, str], list[Encoder]] = {}
_cache_lock = threading.Lock()


def parse_spec(spec: str) -> tuple[str, str | None]:
    """`clip:google/siglip-base-patch16-224` -> ("clip", "google/siglip-base-patch16-224")."""
    name, _, ref = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in PROFILES:
        known = ", ".join(sorted(PROFILES))
        raise MmstudioError(f"unknown profile {name!r}; known profiles: {known}")
    if name == "starter" and ref:
        raise MmstudioError("the starter profile has no model to choose")
    return name, (ref.strip() or None)


def split_specs(text: str) -> list[str]:
    """A command line's `--profile a,b:model` as a list of specs (validated)."""
    specs = []
    for spec in (s.strip() for s in text.split(",") if s.strip()):
        name, ref = parse_spec(spec)
        if ref and Path(ref).expanduser().exists():  # a folder: remember it absolutely
            spec = f"{name}:{Path(ref).expanduser().resolve()}"
        specs.append(spec)
    return specs


def load_profiles(
    specs: Sequence[str],
    device: str = "auto",
    models: Mapping[str, str] | None = None,
) -> list[Encoder]:
    """The encoders of the profiles, created once per (profile, model, device).

    models: the library's chosen checkpoint per profile, for specs that name none.
    """
    from mmstudio.encoders.device import pick_device

    device = pick_device(device)  # "auto" and "cuda" share the encoders of "cuda"
    encoders: list[Encoder] = []
    for spec in specs:
        name, ref = parse_spec(spec)
        ref = ref or (models or {}).get(name) or DEFAULT_MODELS.get(name)
        key = (name, ref, device)
        with _cache_lock:
            if key not in _cache:
                _cache[key] = PROFILES[name](device, ref)
            encoders.extend(e for e in _cache[key] if e not in encoders)
    return encoders


def space_dims(encoders: Sequence[Encoder]) -> dict[str, int]:
    dims: dict[str, int] = {}
    for encoder in encoders:
        dims.update(encoder.dims)
    return dims


def audio_rate(encoders: Sequence[Encoder]) -> int:
    """The rate to decode audio at: the highest any encoder wants (others resample down)."""
    rates = [int(getattr(e, "sample_rate", 16000)) for e in encoders if "audio" in e.routes]
    return max(rates, default=16000)

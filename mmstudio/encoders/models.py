"""Model checkpoints on disk: resolve an id or folder, list what is here, fetch on request.

Offline by default: resolving a Hugging Face id only looks in the local cache
(HF_HOME is respected). A model that is not on disk raises ModelUnavailableError
naming the command that downloads it; nothing is fetched unless the user runs
`mmstudio models fetch ID`, and HF_HUB_OFFLINE=1 forbids even that.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mmstudio.core.errors import ModelUnavailableError

#: profile -> default checkpoint
DEFAULT_MODELS = {
    "clip": "openai/clip-vit-base-patch32",
    "clap": "laion/clap-htsat-unfused",
}
#: checkpoints `mmstudio models list` shows even when they are not on disk
KNOWN_MODELS = {
    "openai/clip-vit-base-patch32": "clip",
    "openai/clip-vit-base-patch16": "clip",
    "openai/clip-vit-large-patch14": "clip",
    "google/siglip-base-patch16-224": "clip",
    "google/siglip2-base-patch16-224": "clip",
    "laion/clap-htsat-unfused": "clap",
    "laion/larger_clap_general": "clap",
}
# Only what loading needs: configs, tokenizers, safetensors weights (never pickles).
FETCH_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "merges.txt", "vocab.*"]


@dataclass(frozen=True)
class ModelInfo:
    ref: str
    profile: str | None
    path: Path | None
    size_bytes: int

    @property
    def on_disk(self) -> bool:
        return self.path is not None


_SNAPSHOT = re.compile(r"models--(?P<org>[^/\\]+?)--(?P<name>[^/\\]+)[/\\]snapshots[/\\][^/\\]+[/\\]?$")


def canonical(ref: str) -> str:
    """One spelling per model: a Hugging Face cache snapshot folder becomes its id."""
    found = _SNAPSHOT.search(str(ref))
    return f"{found['org']}/{found['name']}" if found else str(ref)


def space_name(ref: str) -> str:
    """The space a checkpoint writes: its last path component, e.g. clip-vit-base-patch32."""
    name = Path(canonical(ref).rstrip("/\\")).name.lower()
    return re.sub(r"[^a-z0-9._-]+", "-", name).strip("-") or "model"


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def resolve(ref: str) -> Path:
    """The local folder of a checkpoint given as a folder or a Hugging Face id."""
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelUnavailableError(f"{path} has no config.json: not a model folder")
        return path.resolve()
    if path.is_absolute() or str(ref).startswith((".", "~")):
        raise ModelUnavailableError(f"model folder {ref} does not exist")
    cached = _cached_snapshot(ref)
    if cached is None:
        raise ModelUnavailableError(
            f"model {ref} is not on this machine. Download it with: mmstudio models fetch {ref}"
        )
    return cached


def _cached_snapshot(ref: str) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(ref, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError, OSError):
        return None
    return folder if (folder / "config.json").is_file() else None


def fetch(ref: str, progress: Callable[[str], None] | None = None) -> Path:
    """Download a checkpoint into the Hugging Face cache (the user asked for it)."""
    if offline():
        raise ModelUnavailableError(
            f"HF_HUB_OFFLINE is set, so {ref} cannot be downloaded; unset it to fetch models"
        )
    from huggingface_hub import snapshot_download

    if progress:
        progress(f"downloading {ref}")
    try:
        folder = Path(snapshot_download(ref, allow_patterns=FETCH_PATTERNS))
    except Exception as exc:  # network, auth, unknown id: say it plainly
        raise ModelUnavailableError(f"could not download {ref}: {exc}") from exc
    if not any(folder.glob("*.safetensors")):
        raise ModelUnavailableError(
            f"{ref} has no safetensors weights; mmstudio only loads safetensors checkpoints"
        )
    return folder


_PROFILE_OF_TYPE = {"clip": "clip", "siglip": "clip", "siglip2": "clip", "clap": "clap"}


def profile_of(ref: str) -> str | None:
    """Which profile a checkpoint belongs to: known ids, else its config's model_type."""
    if ref in KNOWN_MODELS:
        return KNOWN_MODELS[ref]
    try:
        config = json.loads((resolve(ref) / "config.json").read_text(encoding="utf-8"))
    except (ModelUnavailableError, OSError, ValueError):
        return None
    return _PROFILE_OF_TYPE.get(str(config.get("model_type", "")).lower())


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def list_models(extra: dict[str, str] | None = None) -> list[ModelInfo]:
    """Known checkpoints plus `extra` (ref -> profile), with what is on disk."""
    refs = {**KNOWN_MODELS, **(extra or {})}
    infos = []
    for ref, profile in sorted(refs.items()):
        try:
            path = resolve(ref)
        except ModelUnavailableError:
            path = None
        infos.append(ModelInfo(ref, profile, path, folder_size(path) if path else 0))
    return infos

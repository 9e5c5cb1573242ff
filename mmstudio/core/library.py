"""A library is a folder: catalog.sqlite, vectors/ (Qdrant Edge), settings.json.

Only one process may open a library at a time: the store is an embedded shard that
one process owns. The lock is an OS file lock on `library.lock` (released by the OS
even when the holder is killed), and the file holds the holder's PID so the second
process can say who has it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import platformdirs

from mmstudio.core.catalog import Catalog
from mmstudio.core.errors import LibraryLockedError, MmstudioError
from mmstudio.store.edge import EdgeStore

log = logging.getLogger(__name__)

SETTINGS_VERSION = 1


def default_library_path() -> Path:
    """Where a library lives when none is named: the platform's user data dir."""
    env = os.environ.get("MMSTUDIO_LIBRARY")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("mmstudio")) / "libraries" / "default"


@dataclass
class Settings:
    """settings.json: what a library remembers between sessions."""

    version: int = SETTINGS_VERSION
    #: profile specs ("starter", "clip", "clip:google/siglip-base-patch16-224", ...)
    profiles: list[str] = field(default_factory=lambda: ["starter"])
    #: the checkpoint chosen per profile (`mmstudio models use`), else the default
    models: dict[str, str] = field(default_factory=dict)
    #: "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:1", "mps"
    device: str = "auto"
    #: space -> the model that writes it: one space never mixes two models' vectors
    spaces: dict[str, str] = field(default_factory=dict)
    frames_per_second: float = 1.0
    store: str = "edge"

    @classmethod
    def load(cls, path: Path) -> Settings:
        if not path.exists():
            return cls()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MmstudioError(f"{path} is not valid JSON ({exc}); fix or delete it") from exc
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)


class _LockFile:
    """An exclusive, non-blocking OS lock on a file holding the owner's PID."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock_fd(fd)
        except OSError:
            pid = _read_pid(fd)
            os.close(fd)
            raise LibraryLockedError(self.path.parent, pid) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the lock
            self._fd = None


def _lock_fd(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


class Library:
    """An open library. Use as a context manager, or call close()."""

    def __init__(self, path: Path | str | None = None, *, create: bool = True) -> None:
        self.path = Path(path).expanduser().resolve() if path else default_library_path()
        if self.path.exists() and not self.path.is_dir():
            raise MmstudioError(f"{self.path} is a file, not a library folder")
        is_library = any((self.path / n).exists() for n in ("catalog.sqlite", "settings.json"))
        if not create and not is_library:
            raise MmstudioError(f"no library at {self.path}; index something into it first")
        if create and not is_library and self.path.exists() and any(
            p.name not in ("library.lock",) for p in self.path.iterdir()
        ):
            raise MmstudioError(
                f"{self.path} is a folder with other files in it, not a library; "
                "give an empty or new folder for the library"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = _LockFile(self.path / "library.lock")
        self._lock.acquire()
        try:
            self.settings = Settings.load(self.settings_path)
            if not self.settings_path.exists():
                self.settings.save(self.settings_path)
            self.catalog = Catalog(self.path / "catalog.sqlite")
            self.store = EdgeStore(self.path / "vectors")
        except BaseException:
            self._lock.release()
            raise
        log.info("opened library %s", self.path)

    @property
    def labels(self):
        """The library's labels (mmstudio.labels.store.LabelStore)."""
        from mmstudio.labels.store import LabelStore

        return LabelStore(self.catalog)

    @property
    def settings_path(self) -> Path:
        return self.path / "settings.json"

    def save_settings(self) -> None:
        self.settings.save(self.settings_path)

    def add_profiles(self, specs: list[str]) -> None:
        """Remember more profiles (kept in settings.json for the next jobs)."""
        for spec in specs:
            if spec not in self.settings.profiles:
                self.settings.profiles.append(spec)
        self.save_settings()

    def encoders(self, profiles: list[str] | None = None, device: str | None = None) -> list:
        """The encoders of this library's profiles (or of the given ones)."""
        from mmstudio.encoders.profiles import load_profiles

        return load_profiles(profiles or self.settings.profiles,
                             device or self.settings.device, self.settings.models)

    def claim_spaces(self, encoders: list) -> None:
        """Record which model writes each space; refuse a second model in one space.

        A space is named after its checkpoint (`.../final` and `.../other/final` both
        make `final`): vectors of two models in one space would be compared as if alike.
        """
        from mmstudio.encoders.models import canonical

        owners = dict(self.settings.spaces)
        claimed = False
        for encoder in encoders:
            ref = getattr(encoder, "ref", None)
            model = canonical(str(ref)) if ref else "starter"
            for space in encoder.dims:
                if space not in owners:
                    owners[space] = model
                    claimed = True
                elif owners[space] != model:
                    raise MmstudioError(
                        f"space {space!r} of this library holds vectors of {owners[space]}; "
                        f"{model} would write into it too. Give that model's folder another "
                        "name (a space is named after its model)."
                    )
        if claimed:
            self.settings.spaces = owners
            self.save_settings()

    def info(self) -> dict[str, object]:
        counts = self.catalog.counts()
        return {
            "library": str(self.path),
            "schema_version": self.catalog.schema_version,
            "profiles": list(self.settings.profiles),
            **counts,
            "errors": len(self.catalog.errors()),
            "store": self.store.stats(),
        }

    def close(self) -> None:
        try:
            self.store.close()
            self.catalog.close()
        finally:
            self._lock.release()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Load a library's models ahead of the first search or ingest (a job).

Models load lazily, on the first encode. In the desktop app that first encode would
happen inside the user's first search; this job does it as soon as a library opens,
with progress, so the first search answers at once.

It also keeps the window responsive while torch loads. Loading a shared library
(`dlopen`) runs its static initialisers, and CPython holds the GIL through an
extension import: importing torch on a worker freezes the GUI thread for about a
quarter of a second on its 400 MB libtorch_cpu. A `dlopen` called through ctypes
runs without the GIL, so the job maps that library first; the import that follows
finds it loaded and holds the GIL only briefly.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import sys
from pathlib import Path

from mmstudio.core.ingest import probe_input
from mmstudio.core.jobs import CancelToken, Progress, ProgressCallback, no_progress
from mmstudio.core.library import Library

log = logging.getLogger(__name__)

# the big native libraries behind the imports the encoders make, heaviest first
_NATIVE = {"torch": ["lib/libtorch_cpu.so", "lib/libtorch_cuda.so"]}


def preload_native_libraries() -> list[str]:
    """Map the encoders' large shared libraries without holding the GIL (Linux only)."""
    if not sys.platform.startswith("linux"):
        return []
    try:
        libc = ctypes.CDLL(None)
        dlopen = libc.dlopen
    except (OSError, AttributeError):
        return []
    dlopen.restype = ctypes.c_void_p
    dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    loaded = []
    for package, names in _NATIVE.items():
        if package in sys.modules:
            continue
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(next(iter(spec.submodule_search_locations)))
        for name in names:
            path = root / name
            # RTLD_GLOBAL as torch loads it; a plain foreign call releases the GIL
            if path.exists() and dlopen(os.fsencode(path), os.RTLD_NOW | os.RTLD_GLOBAL):
                loaded.append(str(path))
    return loaded


def load_models(
    library: Library,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> list[str]:
    """Load every encoder of the library's profiles, each run once; returns their names."""
    cancel = cancel or CancelToken()
    progress(Progress(0, 0, "loading libraries"))
    preload_native_libraries()
    cancel.raise_if_cancelled()
    encoders = library.encoders()
    steps = [(encoder, kind) for encoder in encoders for kind in sorted(encoder.routes)]
    for done, (encoder, kind) in enumerate(steps):
        cancel.raise_if_cancelled()
        progress(Progress(done, len(steps), f"loading {encoder.name} ({kind})"))
        encoder.encode(kind, [probe_input(kind, encoder)])
    progress(Progress(len(steps), len(steps), "models ready"))
    return [encoder.name for encoder in encoders]

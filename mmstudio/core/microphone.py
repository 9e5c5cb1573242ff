"""Record a query from the microphone (sounddevice over the system's PortAudio).

sounddevice is imported lazily: without the PortAudio library (`libportaudio2` on
Debian and Ubuntu) importing it raises OSError, and `unavailable()` says so in a
sentence for the GUI to show.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

import numpy as np
import soundfile as sf

from mmstudio.core.errors import MmstudioError
from mmstudio.core.jobs import CancelToken, Progress, ProgressCallback, no_progress

log = logging.getLogger(__name__)

RATE = 16_000
MAX_SECONDS = 10.0


def _sounddevice():
    try:
        import sounddevice
    except OSError as exc:  # the module loads, PortAudio does not
        raise MmstudioError(
            "recording needs the PortAudio library, which this system lacks "
            f"({exc}); install it (Debian/Ubuntu: apt install libportaudio2)"
        ) from exc
    except ImportError as exc:
        raise MmstudioError(f"recording needs the sounddevice package ({exc})") from exc
    return sounddevice


def unavailable() -> str | None:
    """Why recording cannot work here, or None when a microphone is there to use."""
    try:
        sd = _sounddevice()
        device = sd.query_devices(kind="input")
    except MmstudioError as exc:
        return str(exc)
    except Exception as exc:  # PortAudio errors: no input device, no audio server
        return f"no microphone found ({exc})"
    if not device or device.get("max_input_channels", 0) < 1:
        return "no microphone found"
    return None


def record(
    path: Path,
    *,
    seconds: float = MAX_SECONDS,
    stop: threading.Event | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> Path:
    """Record mono audio into the WAV file `path` until `stop` is set or `seconds` pass."""
    sd = _sounddevice()
    stop = stop or threading.Event()
    chunks: queue.SimpleQueue[np.ndarray] = queue.SimpleQueue()
    total = int(seconds * RATE)
    got = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(path, "w", samplerate=RATE, channels=1, subtype="PCM_16") as out, \
            sd.InputStream(samplerate=RATE, channels=1, dtype="float32",
                           callback=lambda data, *_: chunks.put(data[:, 0].copy())):
        while got < total and not stop.is_set():
            if cancel is not None:
                cancel.raise_if_cancelled()
            try:
                chunk = chunks.get(timeout=0.1)
            except queue.Empty:
                continue
            chunk = chunk[: total - got]
            out.write(chunk)
            got += len(chunk)
            progress(Progress(got // RATE, int(seconds), "recording"))
    if got < RATE // 4:
        raise MmstudioError("the recording is too short; hold the button for a moment longer")
    log.info("recorded %.1f s into %s", got / RATE, path)
    return path

"""UMAP fits in a child process, so that Cancel stops one at once.

umap-learn has no way to stop a fit half-way, and a fit takes minutes on a large
library. Here it runs in one child process (`python -m mmstudio.maps.umap_worker`),
kept for the session so numba compiles UMAP once; Cancel kills the child, and the next
fit starts a new one. Arrays cross the pipes in numpy's .npy format and the rest as JSON
lines: no pickles.

Protocol, parent to child: one JSON line of UMAP's parameters, then the vectors (.npy).
Child to parent: `progress <epoch> <epochs>` lines while it optimises, then `result`
and the 2-D points (.npy), or `error <message>`.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import numpy as np

from mmstudio.core.errors import Cancelled, MmstudioError
from mmstudio.core.jobs import CancelToken, Progress, ProgressCallback, no_progress

log = logging.getLogger(__name__)

POLL_S = 0.1  # how often a waiting fit looks at its cancel token


def _write_array(out: IO[bytes], array: np.ndarray) -> None:
    """One array in .npy format on a pipe (numpy's own writer needs a seekable file)."""
    array = np.ascontiguousarray(array)
    np.lib.format.write_array_header_2_0(out, np.lib.format.header_data_from_array_1_0(array))
    out.write(memoryview(array).cast("B"))


def _read_array(inp: IO[bytes]) -> np.ndarray:
    """The array `_write_array` wrote: plain numbers only, never objects."""
    if np.lib.format.read_magic(inp) != (2, 0):
        raise ValueError("not an array from the UMAP worker")
    shape, fortran, dtype = np.lib.format.read_array_header_2_0(inp)
    if dtype.hasobject or fortran:
        raise ValueError("unexpected array layout from the UMAP worker")
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    data = inp.read(size)
    if len(data) != size:
        raise ValueError("the array from the UMAP worker is truncated")
    return np.frombuffer(data, dtype).reshape(shape)


class _Worker:
    """The child process, and threads that write to it and read what it says."""

    def __init__(self) -> None:
        if not sys.executable:
            raise MmstudioError("UMAP needs a Python interpreter to run in; none was found")
        # run from the folder that holds mmstudio: importable there, and a stray `umap`
        # folder in the user's working directory cannot stand in for the package
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mmstudio.maps.umap_worker"], cwd=_PACKAGE_ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
        self.replies: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, name="umap-worker-out", daemon=True).start()
        self._err = threading.Thread(target=self._read_stderr, name="umap-worker-err",
                                     daemon=True)
        self._err.start()

    def _read(self) -> None:
        out = self.proc.stdout
        try:
            while line := out.readline():
                kind, _, rest = line.decode().rstrip("\n").partition(" ")
                if kind == "progress":
                    self.replies.put(("progress", tuple(int(x) for x in rest.split())))
                elif kind == "result":
                    self.replies.put(("result", _read_array(out)))
                elif kind == "error":
                    self.replies.put(("error", rest))
        except (OSError, ValueError) as exc:  # killed half-way through a reply
            log.debug("UMAP worker output ended: %s", exc)
        self.replies.put(("ended", None))

    def _read_stderr(self) -> None:
        try:
            for line in self.proc.stderr:
                self.stderr = (self.stderr + [line.decode(errors="replace").rstrip()])[-20:]
        except (OSError, ValueError):  # closed by kill()
            pass

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, params: dict[str, Any], vectors: np.ndarray) -> None:
        """Write one request on a thread of its own: the child reads it only once umap
        has loaded, and a Cancel meanwhile must not wait for that."""

        def write() -> None:
            try:
                self.proc.stdin.write(json.dumps(params).encode() + b"\n")
                _write_array(self.proc.stdin, vectors)
                self.proc.stdin.flush()
            except (OSError, ValueError) as exc:  # the child died or was killed: the
                log.debug("UMAP worker input ended: %s", exc)  # reader reports it

        threading.Thread(target=write, name="umap-worker-in", daemon=True).start()

    def why_it_ended(self) -> str:
        self.kill()
        self._err.join(timeout=2)  # its last words, e.g. an ImportError
        return "; ".join(self.stderr[-3:]) or f"exit code {self.proc.returncode}"

    def kill(self) -> None:
        if self.alive:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except (OSError, ValueError):
                pass


_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_lock = threading.Lock()  # one fit at a time goes to the worker
_worker: _Worker | None = None


def fit_umap(vectors: np.ndarray, params: dict[str, Any], *,
             progress: ProgressCallback = no_progress,
             cancel: CancelToken | None = None) -> np.ndarray:
    """UMAP(**params).fit_transform(vectors) in the worker process: (N, 2) float32.

    Raises Cancelled soon after `cancel` is set, and MmstudioError when the fit fails or
    the worker dies. Whenever a fit does not end with the worker's answer (cancelled, or
    `progress` raised), the worker is killed: a later fit must never read this one's.
    """
    global _worker
    vectors = np.ascontiguousarray(vectors, np.float32)
    while not _lock.acquire(timeout=POLL_S):  # another fit is running
        if cancel is not None and cancel.cancelled:
            raise Cancelled("cancelled")
    try:
        if _worker is not None and not _worker.alive:
            _worker.kill()  # reaped, its pipes closed
            _worker = None
        if _worker is None:
            _worker = _Worker()
        worker = _worker
        answered = False
        try:
            kind, value = _exchange(worker, params, vectors, progress, cancel)
            answered = kind in ("result", "error")
        finally:
            if not answered:
                worker.kill()
                _worker = None
        if kind == "error":
            raise MmstudioError(f"UMAP failed: {value}")
        if kind == "ended":
            raise MmstudioError(f"the UMAP process ended unexpectedly ({worker.why_it_ended()})")
        return value.astype(np.float32, copy=False)
    finally:
        _lock.release()


def _exchange(worker: _Worker, params, vectors, progress, cancel) -> tuple[str, Any]:
    """Send one fit and wait for its answer: ("result", xy), ("error", message) or
    ("ended", None); progress is relayed."""
    worker.send(params, vectors)
    while True:
        if cancel is not None and cancel.cancelled:
            raise Cancelled("cancelled")
        try:
            kind, value = worker.replies.get(timeout=POLL_S)
        except queue.Empty:
            continue
        if kind != "progress":
            return kind, value
        epoch, epochs = value
        progress(Progress(epoch, epochs, f"UMAP: epoch {epoch:,} of {epochs:,}"))


@atexit.register
def stop() -> None:
    """End the worker process (the next fit starts a new one)."""
    global _worker
    with _lock:
        if _worker is not None:
            _worker.kill()
            _worker = None


# ---------------------------------------------------------------------------- the child


class _EpochReport:
    """A file for tqdm (bar_format "{n} {total}") that reports epochs to the parent."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def write(self, text: str) -> None:
        numbers = text.strip().split()
        if len(numbers) == 2 and all(n.isdigit() for n in numbers):
            self.out.write(f"progress {numbers[0]} {numbers[1]}\n".encode())
            self.out.flush()

    def flush(self) -> None:
        pass


def _serve(inp: IO[bytes], out: IO[bytes]) -> None:
    import umap  # optional extra: numba compiles on the first fit of this process

    while line := inp.readline():
        params = json.loads(line)
        vectors = _read_array(inp)
        try:
            reducer = umap.UMAP(**params, tqdm_kwds={
                "disable": False, "file": _EpochReport(out), "bar_format": "{n} {total}",
                "mininterval": 0.25, "ascii": True})
            xy = reducer.fit_transform(vectors).astype(np.float32)
        except Exception as exc:  # reported to the parent, which raises it as a job error
            out.write(f"error {type(exc).__name__}: {exc}".replace("\n", " ").encode() + b"\n")
            out.flush()
            continue
        out.write(b"result\n")
        _write_array(out, xy)
        out.flush()


def main() -> None:
    # The replies go out on a copy of stdout; whatever a library prints goes to stderr,
    # where it cannot break the protocol.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()

"""Memory: peak RSS of indexing 2,000 items against 500, each in a fresh process.

Ingest is meant to hold memory bounded by its queue and batches, never by the size
of the collection, so four times the items should cost (almost) no more peak memory:
the target is peak(large) <= 1.2 x peak(small). The parent generates both folders
beforehand (of every ten files: 8 pictures, 1 note, 1 two-second sound); each child
(`python -m tests.bench.memory --child FOLDER --library DIR`) only opens a new
library, loads the starter profile (one warm-up encode per encoder, so the weights
are in memory), reads its RSS, runs index() and reads its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.bench import corpus
from tests.bench.report import BenchResult, Table, Target

log = logging.getLogger(__name__)

NAME = "memory"
TARGET_PEAK_RATIO = 1.20
REPO = Path(__file__).resolve().parents[2]
CHILD_TIMEOUT_S = 1800


# -- the child: runs in a fresh interpreter --------------------------------------------


def _maxrss_kb() -> int:
    """Peak resident set size of this process so far (ru_maxrss is KB on Linux)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _status_kb(field: str) -> int | None:
    """A field of /proc/self/status in KB (VmRSS: now, VmHWM: peak); None without /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _rss_kb() -> int | None:
    return _status_kb("VmRSS")


def _peak_kb() -> int:
    """Peak RSS of this process's own memory.

    ru_maxrss is not enough on its own: Linux carries it over exec, and subprocess
    starts the child with vfork, so a child whose parent is large reports the
    parent's peak until it outgrows it. VmHWM is the high-water mark of the
    child's own address space. Both are recorded.
    """
    hwm = _status_kb("VmHWM")
    return hwm if hwm is not None else _maxrss_kb()


def child(folder: Path, library_path: Path) -> dict[str, Any]:
    import numpy as np
    from PIL import Image

    from mmstudio.core.ingest import index
    from mmstudio.core.library import Library
    from mmstudio.core.segments import Audio
    from mmstudio.encoders.profiles import load_profiles

    out: dict[str, Any] = {"rss_start_kb": _rss_kb(), "peak_start_kb": _peak_kb(),
                           "ru_maxrss_start_kb": _maxrss_kb()}
    t0 = time.perf_counter()
    encoders = load_profiles(["starter"])
    warm_up = {
        "image": [Image.new("RGB", (64, 64), (128, 128, 128))],
        "text": ["warm up"],
        "audio": [Audio(np.zeros(16000, np.float32), 16000)],
    }
    for encoder in encoders:  # weights load on the first encode
        for kind in encoder.routes:
            encoder.encode(kind, warm_up[kind])
    out |= {"load_s": time.perf_counter() - t0,
            "rss_loaded_kb": _rss_kb(), "peak_loaded_kb": _peak_kb(),
            "ru_maxrss_loaded_kb": _maxrss_kb()}
    with Library(library_path) as library:
        report = index(library, [folder], encoders=encoders)
    out |= {
        "peak_kb": _peak_kb(),
        "ru_maxrss_kb": _maxrss_kb(),
        "rss_end_kb": _rss_kb(),
        "index_s": report.seconds,
        "indexed": report.indexed,
        "segments": report.segments,
        "errors": len(report.errors),
    }
    return out


# -- the parent ------------------------------------------------------------------------


def run_child(folder: Path, library_path: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "tests.bench.memory", "--child", str(folder),
           "--library", str(library_path)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _mb(kb: float) -> str:
    return f"{kb / 1024:.0f}"


def run(quick: bool, workdir: Path) -> BenchResult:
    started = time.perf_counter()
    small, large = (150, 600) if quick else (500, 2000)
    kinds = {n: corpus.mixed(workdir / f"media-{n}", n) for n in (small, large)}
    runs: dict[int, dict[str, Any]] = {}
    for n in (small, large):
        log.info("indexing %d items in a fresh process", n)
        runs[n] = run_child(workdir / f"media-{n}", workdir / f"library-{n}")
        log.info("%d items: %s", n, runs[n])

    table = Table(["items", "pictures/notes/sounds", "segments", "index s", "load s",
                   "baseline MB", "peak MB", "growth MB", "RSS at end MB", "ru_maxrss MB"])
    for n, r in runs.items():
        k = kinds[n]
        table.add(n, f"{k['image']}/{k['text']}/{k['audio']}", r["segments"], f"{r['index_s']:.1f}",
                  f"{r['load_s']:.1f}", _mb(r["peak_loaded_kb"]), _mb(r["peak_kb"]),
                  _mb(r["peak_kb"] - r["peak_loaded_kb"]), _mb(r["rss_end_kb"] or 0), _mb(r["ru_maxrss_kb"]))
    peak_ratio = runs[large]["peak_kb"] / runs[small]["peak_kb"]
    growth = {n: r["peak_kb"] - r["peak_loaded_kb"] for n, r in runs.items()}
    growth_ratio = growth[large] / growth[small] if growth[small] > 0 else float("inf")
    notes = [
        "baseline: peak RSS after loading the starter profile and one warm-up encode per "
        "encoder (before index); peak: after index(); growth: peak - baseline. Peaks are "
        "VmHWM (the child's own high-water mark); ru_maxrss is in the JSON too, but Linux "
        "carries it over exec from the (vforking) parent",
        f"growth ratio {large}/{small}: {growth_ratio:.2f} "
        f"({growth[large] / 1024:.0f} MB vs {growth[small] / 1024:.0f} MB)",
    ]
    bad = [n for n, r in runs.items() if r["errors"] or r["indexed"] != n]
    if bad:
        notes.append(f"not every file indexed cleanly for: {bad}")
    return BenchResult(
        name=NAME,
        title="peak RSS of index(), larger collection vs smaller",
        params={"small": small, "large": large, "mix": "80% pictures, 10% notes, 10% 2 s sounds"},
        table=table,
        targets=[Target(f"peak RSS ratio {large}/{small} items", peak_ratio, "<=", TARGET_PEAK_RATIO)],
        notes=notes,
        data={"runs": {str(n): r | {"kinds": dict(kinds[n])} for n, r in runs.items()},
              "peak_ratio": peak_ratio, "growth_ratio": growth_ratio},
        seconds=time.perf_counter() - started,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="memory benchmark child: index one folder")
    parser.add_argument("--child", type=Path, required=True, help="folder to index")
    parser.add_argument("--library", type=Path, required=True, help="new library folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    result = child(args.child, args.library)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

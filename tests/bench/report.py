"""What a benchmark hands back, and how it is shown and saved.

A benchmark reports; it does not gate. Each one returns a `BenchResult` holding one
table, its targets (each PASS or FAIL), notes, and the raw measurements that go to
JSON unchanged, so that runs can be compared without parsing the table.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Target:
    """`value op threshold`, e.g. ratio >= 0.85. A value of None (not measured) fails."""

    name: str
    value: float | None
    op: str  # ">=" or "<="
    threshold: float
    unit: str = ""

    @property
    def passed(self) -> bool:
        if self.value is None or not np.isfinite(self.value):
            return False
        return self.value >= self.threshold if self.op == ">=" else self.value <= self.threshold

    def line(self) -> str:
        shown = "n/a" if self.value is None else f"{self.value:.4g}"
        verdict = "PASS" if self.passed else "FAIL"
        return f"{verdict}  {self.name}: {shown}{self.unit} (target {self.op} {self.threshold:g}{self.unit})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"row has {len(cells)} cells, table has {len(self.columns)} columns")
        self.rows.append([str(c) for c in cells])

    def render(self) -> str:
        widths = [max(len(c), *(len(r[i]) for r in self.rows)) if self.rows else len(c)
                  for i, c in enumerate(self.columns)]
        def line(cells: list[str]) -> str:
            return "  ".join(c.rjust(w) if i else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        rule = "  ".join("-" * w for w in widths)
        return "\n".join([line(self.columns), rule, *(line(r) for r in self.rows)])


@dataclass
class BenchResult:
    name: str
    title: str
    params: dict[str, Any]
    table: Table
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    #: further tables printed under the main one, by name (JSON: "<name>_table")
    extra_tables: dict[str, Table] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.targets)

    def render(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        parts = [f"== {self.name}: {self.title} ({params}; {self.seconds:.0f} s)", self.table.render()]
        parts += [t.render() for t in self.extra_tables.values()]
        if self.targets:
            parts.append("\n".join(t.line() for t in self.targets))
        if self.notes:
            parts.append("\n".join(f"note: {n}" for n in self.notes))
        return "\n".join(parts) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "params": self.params,
            "seconds": round(self.seconds, 2),
            "passed": self.passed,
            "targets": [t.to_dict() for t in self.targets],
            "table": {"columns": self.table.columns, "rows": self.table.rows},
            "notes": self.notes,
            "data": self.data,
            **{f"{name}_table": {"columns": t.columns, "rows": t.rows}
               for name, t in self.extra_tables.items()},
        }


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds by the clock
    cpu: float  # CPU seconds of this process (all threads) in the same span
    others_cpu: float | None  # CPU seconds the rest of the machine used meanwhile


class Clock:
    """Times a block: wall clock, this process's CPU, and everybody else's CPU.

    The last one says how noisy a measurement was: on a 2-core machine another
    process taking one core halves torch's throughput, whatever the code does.
    """

    def __enter__(self) -> Clock:
        self._busy = _machine_busy_s()
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        wall, cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu
        busy = _machine_busy_s()
        others = None
        if busy is not None and self._busy is not None:
            others = max(0.0, busy - self._busy - cpu)
        self.timing = Timing(wall, cpu, others)


def _machine_busy_s() -> float | None:
    """CPU seconds all processes have used since boot (/proc/stat; None elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait
    busy = sum(fields[:3]) + sum(fields[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


def write_json(path: Path, obj: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_jsonable) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def machine_info() -> dict[str, Any]:
    """What the numbers depend on: cores, memory, Python, torch and its threads, platform."""
    import torch

    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_model() or platform.processor(),
        "memory_gb": _total_memory_gb(),
    }
    for dist in ("qdrant-edge-py", "qdrant-client", "mmstudio"):
        info[dist] = _version(dist)
    return info


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _total_memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def percentile_ms(seconds: list[float] | np.ndarray, q: float) -> float:
    return float(np.percentile(np.asarray(seconds, dtype=np.float64), q) * 1000.0)

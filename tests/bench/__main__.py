"""Run the benchmarks: `python -m tests.bench [--only ingest,search] [--quick] [--out DIR] [--device cuda]`.

Prints one table per benchmark with its targets (PASS/FAIL) and writes one JSON file
per benchmark plus summary.json (machine info included) into the out folder. The exit
status is 0 whatever the verdicts: benchmarks report, they do not gate. It is 1 only
when a benchmark itself crashed.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.bench.report import BenchResult, machine_info, write_json

log = logging.getLogger("tests.bench")

BENCHMARKS = ("ingest", "search", "memory", "encoders", "gui", "faithfulness", "active", "fusion",
              "map")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help=f"comma-separated subset of {','.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a fast check")
    parser.add_argument("--out", type=Path, default=Path("bench-results"),
                        help="folder for the JSON results (default: bench-results/)")
    parser.add_argument("--device", default="cpu",
                        help="where benchmarks that take one run their encoders: cpu, cuda, "
                             "cuda:N, mps (default: cpu)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the engine too")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown or not names:
        parser.error(f"--only: unknown benchmark(s) {', '.join(unknown) or '(none given)'}; "
                     f"choose from {', '.join(BENCHMARKS)}")
    args.only = [n for n in BENCHMARKS if n in names]
    return args


def run_one(name: str, quick: bool, device: str = "cpu") -> BenchResult:
    module = importlib.import_module(f"tests.bench.{name}")
    kwargs = {"device": device} if "device" in inspect.signature(module.run).parameters else {}
    with tempfile.TemporaryDirectory(prefix=f"mmstudio-bench-{name}-") as tmp:
        return module.run(quick, Path(tmp), **kwargs)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s", datefmt="%H:%M:%S")
    log.setLevel(logging.INFO)
    started = time.perf_counter()
    machine = machine_info()
    log.info("machine: %s", machine)
    summary: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": args.quick,
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "machine": machine,
        "benchmarks": {},
    }
    crashed = False
    for name in args.only:
        log.info("running %s%s", name, " (quick)" if args.quick else "")
        try:
            result = run_one(name, args.quick, args.device)
        except Exception as exc:  # one broken benchmark must not hide the others' numbers
            log.exception("benchmark %s crashed", name)
            summary["benchmarks"][name] = {"crashed": f"{type(exc).__name__}: {exc}"}
            crashed = True
            continue
        sys.stdout.write(result.render() + "\n")
        sys.stdout.flush()
        path = write_json(args.out / f"{name}.json", {**result.to_dict(), "machine": machine})
        summary["benchmarks"][name] = {
            "json": str(path),
            "seconds": round(result.seconds, 1),
            "passed": result.passed,
            "targets": [t.to_dict() for t in result.targets],
        }
    summary["seconds"] = round(time.perf_counter() - started, 1)
    path = write_json(args.out / "summary.json", summary)
    verdicts = ", ".join(
        f"{n}: {'crashed' if 'crashed' in b else 'PASS' if b['passed'] else 'FAIL'}"
        for n, b in summary["benchmarks"].items()
    )
    sys.stdout.write(f"{verdicts} ({summary['seconds']:.0f} s); results in {path.parent}/\n")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())

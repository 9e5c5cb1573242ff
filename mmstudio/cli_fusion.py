"""`mmstudio fusion`: train fusion classifiers on a label schema and read their reports."""

from __future__ import annotations

import argparse
import json
import signal
import sys

from mmstudio.core.errors import Cancelled, MmstudioError

METHOD_CHOICES = ("early", "late", "attention", "all")


def _folds(text: str) -> int:
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError("must be 2 or more")
    return value


def add_parser(subparsers) -> argparse.ArgumentParser:
    # mmstudio.cli imports this module: its helpers are taken at call time, not import time
    from mmstudio.cli import _add_library, _positive

    p = subparsers.add_parser("fusion", help="classifiers that combine an item's modalities")
    sub = p.add_subparsers(dest="fusion_command", required=True)
    t = sub.add_parser("train", help="cross-validate fusion methods on a schema's labels, keep "
                                     "them and write suggestions")
    t.add_argument("--schema", required=True, help="the label schema (single-label)")
    t.add_argument("--method", default="all",
                   help="early, late, attention or all (comma-separated); single-modality "
                        "probes always run as baselines")
    t.add_argument("--inputs", help="modalities to use as KIND:SPACE, comma-separated "
                                    "(default: one space per kind, e.g. image:starter-image)")
    t.add_argument("--folds", type=_folds, default=5, help="cross-validation folds (default 5)")
    t.add_argument("--epochs", type=_positive, help="training epochs per model (default 40)")
    t.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_library(t)
    r = sub.add_parser("report", help="the scores of trained fusion models")
    r.add_argument("--schema", help="the label schema (default: the only one trained)")
    r.add_argument("--version", type=_positive, help="which version (default: the latest)")
    r.add_argument("--json", action="store_true")
    _add_library(r)
    return p


def run(args: argparse.Namespace) -> int:
    if args.fusion_command == "train":
        return _train(args)
    return _report(args)


def _train(args: argparse.Namespace) -> int:
    from mmstudio.cli import _open, _ProgressBar
    from mmstudio.core.jobs import CancelToken
    from mmstudio.fusion.train import Hyper, train

    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHOD_CHOICES]
    if bad or not methods:
        raise MmstudioError(f"--method: {', '.join(bad) or 'none given'}; choose from "
                            f"{', '.join(METHOD_CHOICES)}")
    inputs = [i.strip() for i in args.inputs.split(",") if i.strip()] if args.inputs else None
    hyper = Hyper(epochs=args.epochs) if args.epochs else None
    cancel = CancelToken()

    def on_interrupt(signum, frame):  # first Ctrl-C: stop after this epoch; second: default
        print("\nstopping after the current epoch (Ctrl-C again to abort)…", file=sys.stderr)
        cancel.cancel()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        with _open(args, create=False) as library, _ProgressBar(enabled=not args.json) as bar:
            report = train(library, args.schema, [*methods, "probes"], inputs, args.folds, hyper,
                           progress=bar.update, cancel=cancel)
    except Cancelled:
        print("interrupted: nothing was saved", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        print(format_report(report))
        print(f"\nsaved as v{report.version}; suggestions from {report.best} written as "
              f"fusion:{report.best}:v{report.version}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from mmstudio.cli import _open
    from mmstudio.fusion.saved import report, trained_schemas

    with _open(args, create=False) as library:
        schema = args.schema
        if schema is None:
            trained = trained_schemas(library)
            if len(trained) != 1:
                raise MmstudioError("no schema has fusion models yet: run `mmstudio fusion "
                                    "train --schema NAME`" if not trained else
                                    f"several schemas have fusion models ({', '.join(trained)}); "
                                    "choose one with --schema")
            schema = trained[0]
        found = report(library, schema, args.version)
    print(json.dumps(found.to_dict(), indent=1) if args.json else format_report(found))
    return 0


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                      for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
            for r in [header, *rows]]


def format_report(report) -> str:
    """The report as readable tables: scores and ablation per method, late fusion's
    weights, attention per modality per label."""
    version = f" v{report.version}" if report.version is not None else ""
    lines = [f"fusion{version} of schema {report.schema!r}: {report.n_items} items, "
             f"{len(report.classes)} labels ({', '.join(report.classes)}), "
             f"{report.folds}-fold cross-validation",
             f"inputs: {', '.join(report.inputs)}", ""]
    header = ["method", "accuracy", "macro-F1", *(f"acc w/o {n}" for n in report.inputs),
              "train s"]
    rows = []
    for name, m in report.methods.items():
        mark = " *" if name == report.best else ""
        rows.append([name + mark, f"{m.accuracy:.3f}", f"{m.macro_f1:.3f}",
                     *(f"{m.ablation[n].accuracy:.3f}" for n in report.inputs),
                     f"{m.seconds:.1f}"])
    lines += _table(header, rows)
    lines.append("* best (highest macro-F1); 'w/o' = that input dropped at test time")
    late = report.methods.get("late")
    if late is not None and late.late_weights:
        lines += ["", "late fusion weights: " + ", ".join(
            f"{n} {w:.2f}" for n, w in late.late_weights.items())]
    attention = report.methods.get("attention")
    if attention is not None and attention.attention:
        lines += ["", "attention per modality (mean over items, by true label):"]
        lines += _table(["label", *report.inputs],
                        [[c, *(f"{attention.attention[c][n]:.2f}" for n in report.inputs)]
                         for c in report.classes if c in attention.attention])
    return "\n".join(lines)

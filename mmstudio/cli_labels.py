"""`mmstudio labels ...`: schemas, labeling files from scripts, suggestions, export/import."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub, add_library) -> None:
    p = sub.add_parser("labels", help="label schemas, labels, suggestions, export and import")
    lsub = p.add_subparsers(dest="labels_command", required=True)

    s = lsub.add_parser("schema", help="create a label schema, or change one's labels")
    s.add_argument("name")
    s.add_argument("labels", nargs="+", help="label names; keys 1-9 go to the first nine")
    s.add_argument("--multi", action="store_true", help="items may carry several labels")
    add_library(s)

    s = lsub.add_parser("list", help="the schemas and how many items carry each label")
    s.add_argument("--json", action="store_true")
    add_library(s)

    s = lsub.add_parser("set", help="label the items of some files (one undoable change)")
    s.add_argument("--schema", required=True)
    s.add_argument("--label", required=True)
    s.add_argument("--mode", choices=("set", "add", "remove"), default="set")
    s.add_argument("paths", nargs="+", type=Path)
    add_library(s)

    s = lsub.add_parser("suggest", help="compute suggestions for every item (zero-shot, "
                        "k-NN vote or classifier, by what is labeled)")
    s.add_argument("--schema", required=True)
    add_library(s)

    s = lsub.add_parser("export", help="write labels as CSV, JSONL or a Hugging Face folder")
    s.add_argument("--schema", required=True)
    s.add_argument("out", type=Path, help="file.csv, file.jsonl, or a folder (Hugging Face)")
    s.add_argument("--format", choices=("csv", "jsonl", "hf"))
    s.add_argument("--all", action="store_true", help="unlabeled items too")
    s.add_argument("--modality", choices=("image", "audio", "video", "text"),
                   help="only items with a file of this kind, that file first (a Hugging "
                   "Face imagefolder or audiofolder reads every file_name as one kind)")
    s.add_argument("--link", action="store_true",
                   help="Hugging Face folder: symbolic links instead of copies")
    add_library(s)

    s = lsub.add_parser("import", help="read labels from CSV, JSONL or a Hugging Face folder")
    s.add_argument("source", type=Path)
    s.add_argument("--schema", help="the schema to fill (default: the one the file names)")
    s.add_argument("--format", choices=("csv", "jsonl", "hf"))
    add_library(s)


def run(args: argparse.Namespace, open_library) -> int:
    command = args.labels_command
    with open_library(args, create=command not in ("list", "export", "suggest")) as library:
        return {"schema": _schema, "list": _list, "set": _set, "suggest": _suggest,
                "export": _export, "import": _import}[command](library, args)


def _schema(library, args) -> int:
    from mmstudio.labels import Schema

    store = library.labels
    known = {s.name: s for s in store.schemas()}
    if args.name in known:  # keep the colours and keys of the labels it had
        old = known[args.name]
        fresh = Schema.of(args.name, args.labels, args.multi)
        defs = tuple(old.label(d.name) if d.name in old.names else d for d in fresh.labels)
        schema = Schema(args.name, defs, args.multi)
    else:
        schema = Schema.of(args.name, args.labels, args.multi)
    store.save_schema(schema)
    kind = "multi-label" if schema.multi else "single-label"
    print(f"schema {schema.name} ({kind}): " + ", ".join(
        f"{d.key or '-'} {d.name}" for d in schema.labels))
    return 0


def _list(library, args) -> int:
    store = library.labels
    rows = [{"schema": s.name, "multi": s.multi, "labels": s.names, "counts": store.counts(s.name)}
            for s in store.schemas()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no label schemas yet: `mmstudio labels schema NAME LABEL...` makes one")
    for r in rows:
        counts = ", ".join(f"{n} {r['counts'].get(n, 0)}" for n in r["labels"])
        print(f"{r['schema']} ({'multi' if r['multi'] else 'single'}-label): {counts}")
    return 0


def _set(library, args) -> int:
    items, missing = [], []
    for path in args.paths:
        item = library.catalog.item_of_path(str(path.expanduser().resolve()))
        (items.append(item) if item is not None else missing.append(path))
    for path in missing:
        print(f"mmstudio: {path}: not in this library (index it first)", file=sys.stderr)
    if items:
        change = library.labels.apply_label(args.schema, items, args.label, args.mode,
                                            session="cli")
        print(f"{args.label}: {len(change.items)} items ({args.mode})")
    return 1 if missing else 0


def _suggest(library, args) -> int:
    from mmstudio.labels.queue import plan_queue

    schema = library.labels.schema(args.schema)
    items = sorted(library.catalog.item_files())
    plan = plan_queue(library, schema, items, "given")
    if plan.scores is None:
        print("no suggestions: nothing is labeled and no space has a text tower")
        return 1
    best = plan.scores.best()
    library.labels.set_suggestions(schema.name, best)
    counts: dict[str, int] = {}
    for s in best.values():
        counts[s.label] = counts.get(s.label, 0) + 1
    print(f"{len(best)} suggestions from {plan.scores.source}: " +
          ", ".join(f"{n} {counts.get(n, 0)}" for n in schema.names))
    return 0


def _export(library, args) -> int:
    from mmstudio.labels.exchange import export_labels

    report = export_labels(library, args.schema, args.out, args.format,
                           include_unlabeled=args.all, copy_files=not args.link,
                           modality=args.modality)
    print(f"wrote {report.rows} items to {report.path}" +
          (f" ({report.files_copied} files)" if report.files_copied else ""))
    return 0


def _import(library, args) -> int:
    from mmstudio.labels.exchange import import_labels

    report = import_labels(library, args.source, args.schema, args.format, session="cli-import")
    for what, reason in report.unmatched:
        print(f"mmstudio: {what}: {reason}", file=sys.stderr)
    print(f"labeled {report.applied} items" +
          (f"; new labels: {', '.join(report.created_labels)}" if report.created_labels else "") +
          (f"; {len(report.unmatched)} rows skipped" if report.unmatched else ""))
    return 0

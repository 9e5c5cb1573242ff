"""`mmstudio map`: a space's 2-D map, computed or brought up to date, as a summary or CSV."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from mmstudio.core.errors import MmstudioError


def add_parser(subparsers) -> argparse.ArgumentParser:
    from mmstudio.cli import _add_library

    p = subparsers.add_parser("map", help="the 2-D map of a space's items (what the Map tab "
                                          "shows), computed or updated and cached")
    p.add_argument("--space", help="the embedding space (default: the one with most items)")
    from mmstudio.maps.layout import METHODS

    p.add_argument("--method", choices=METHODS, default="pca",
                   help="pca (default) or umap (needs the umap extra)")
    p.add_argument("--recompute", action="store_true",
                   help="fit a fresh layout instead of updating the cached one")
    p.add_argument("--csv", type=Path, metavar="FILE",
                   help="write item_id, path, modality, x, y per item")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_library(p)
    return p


def run(args: argparse.Namespace) -> int:
    from mmstudio.cli import _open, _ProgressBar
    from mmstudio.core.items import main_file
    from mmstudio.maps.build import cache_path, compute_map, map_spaces, open_or_compute_map
    from mmstudio.maps.layout import METHOD_NAMES

    with _open(args, create=False) as library:
        spaces = map_spaces(library)
        if not spaces:
            raise MmstudioError("this library has no vectors yet: index some files first")
        space = args.space or next(iter(spaces))
        if space not in spaces:
            raise MmstudioError(f"no items in space {space!r}; spaces: {', '.join(spaces)}")
        with _ProgressBar(enabled=not args.json) as bar:
            get = compute_map if args.recompute else open_or_compute_map
            state = get(library, space, args.method, progress=bar.update)
        layout = state.layout
        if args.csv is not None:
            files = library.catalog.item_files()  # one query; every map item is in it
            with open(args.csv, "w", newline="", encoding="utf-8") as f:
                out = csv.writer(f)
                out.writerow(["item_id", "path", "modality", "x", "y"])
                for item, (x, y) in zip(layout.item_ids.tolist(), layout.xy.tolist(),
                                        strict=True):
                    path, modality = main_file(files[item]) if item in files else ("", "")
                    out.writerow([item, path, modality, f"{x:.6g}", f"{y:.6g}"])
        summary = {"space": space, "method": layout.method, "items": len(layout),
                   "fitted_on": layout.fitted, "placed_since": layout.placed,
                   "fitted_now": state.fitted_now, "added": state.added, "moved": state.moved,
                   "removed": state.removed, "seconds": round(state.seconds, 3),
                   "cache": str(cache_path(library.path, space, layout.method))}
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    what = "fitted" if state.fitted_now else "updated"
    print(f"{space}: {len(layout):,} items, {METHOD_NAMES[layout.method]} map {what} in "
          f"{state.seconds:.2f} s (fitted on {layout.fitted:,}; {layout.placed:,} placed since)")
    if not state.fitted_now and (state.added or state.moved or state.removed):
        print(f"placed {state.added} new, moved {state.moved}, removed {state.removed}")
    if args.csv is not None:
        print(f"wrote {args.csv}", file=sys.stderr)
    return 0

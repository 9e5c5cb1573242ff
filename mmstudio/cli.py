"""The `mmstudio` command line. With no arguments it opens the app.

Until the desktop window exists, "the app" is the demo: it generates a sample
library, indexes it and shows a few searches across modalities.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

from mmstudio.core.errors import MmstudioError
from mmstudio.encoders.profiles import split_specs

log = logging.getLogger("mmstudio")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _add_library(p: argparse.ArgumentParser) -> None:
    p.add_argument("--library", type=Path, help="library folder (default: the user data dir)")


def _add_models(p: argparse.ArgumentParser, verb: str) -> None:
    p.add_argument("--profile", help=f"profiles to {verb}: starter, clip, clap, or NAME:MODEL "
                   "(e.g. clip:google/siglip-base-patch16-224); comma-separated")
    p.add_argument("--device", help="auto (default: CUDA, then MPS, then CPU), cpu, cuda, mps")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmstudio",
        description="Explore multimodal collections. With no command, opens the app.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("index", help="add folders or files to a library (incremental)")
    p.add_argument("paths", nargs="+", type=Path)
    _add_library(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--workers", type=_positive, help="decoder threads (default: cores - 1)")
    _add_models(p, "add to the library (it remembers them)")

    p = sub.add_parser("search", help="find the items closest to a text or a file")
    p.add_argument("text", nargs="?", help="text to search for")
    p.add_argument("--file", type=Path, help="search with a file (image, text, audio, video)")
    _add_library(p)
    p.add_argument("--modality", help="only these modalities, e.g. image,video")
    p.add_argument("--limit", type=_positive, default=10)
    p.add_argument("--json", action="store_true")
    _add_models(p, "search with (default: all of the library's)")

    p = sub.add_parser("explain", help="why a search result matched: relevance map and tokens")
    p.add_argument("text", nargs="?", help="text query")
    p.add_argument("--file", type=Path, help="query with a file (image, text, audio, video)")
    _add_library(p)
    p.add_argument("--rank", type=_positive, default=1, help="which result (default: the first)")
    p.add_argument("--method", help="gradcam, chefer, rollout, gradinput, rise or occlusion "
                                    "(default: the best one for the result's encoder)")
    p.add_argument("--out", type=Path, help="write the map over the item to this PNG")
    p.add_argument("--colormap", default="inferno", help="inferno, viridis, jet or grey")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("info", help="what a library holds")
    _add_library(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("gui", help="open the desktop app (what `mmstudio` alone does)")
    _add_library(p)

    p = sub.add_parser("demo", help="index a generated sample library and search it")
    _add_library(p)

    p = sub.add_parser("models", help="list, download or choose models")
    msub = p.add_subparsers(dest="models_command", required=True)
    m = msub.add_parser("list", help="known models, what is on disk, sizes")
    _add_library(m)
    m.add_argument("--json", action="store_true")
    m = msub.add_parser("fetch", help="download a model (only when you ask)")
    m.add_argument("ref", help="a Hugging Face id, e.g. openai/clip-vit-base-patch32")
    m = msub.add_parser("use", help="choose the model a library's profile uses")
    m.add_argument("ref", help="a Hugging Face id or a model folder")
    m.add_argument("--profile", choices=["clip", "clap"], help="when it cannot be told")
    _add_library(m)

    from mmstudio import cli_fusion, cli_labels, cli_map

    cli_labels.add_parser(sub, _add_library)
    cli_fusion.add_parser(sub)
    cli_map.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    command = args.command or "gui"
    try:
        return {"index": cmd_index, "search": cmd_search, "explain": cmd_explain, "info": cmd_info, "demo": cmd_demo,
                "models": cmd_models, "gui": cmd_gui, "labels": cmd_labels,
                "fusion": cmd_fusion, "map": cmd_map}[command](args)
    except MmstudioError as exc:
        print(f"mmstudio: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nmmstudio: interrupted", file=sys.stderr)
        return 130


def _open(args: argparse.Namespace, create: bool = True):
    from mmstudio.core.library import Library

    return Library(getattr(args, "library", None), create=create)


def cmd_labels(args: argparse.Namespace) -> int:
    from mmstudio import cli_labels

    return cli_labels.run(args, _open)


def cmd_fusion(args: argparse.Namespace) -> int:
    from mmstudio import cli_fusion

    return cli_fusion.run(args)


def cmd_map(args: argparse.Namespace) -> int:
    from mmstudio import cli_map

    return cli_map.run(args)


def cmd_index(args: argparse.Namespace) -> int:
    from mmstudio.core.ingest import index
    from mmstudio.core.jobs import CancelToken

    cancel = CancelToken()

    def on_interrupt(signum, frame):  # first Ctrl-C: finish cleanly; second: default
        print("\nstopping after the current batch (Ctrl-C again to abort)…", file=sys.stderr)
        cancel.cancel()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    specs = split_specs(args.profile) if args.profile else []
    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        with _open(args) as library:
            # build (and find the models of) the new profiles before remembering them
            profiles = library.settings.profiles + [p for p in specs
                                                    if p not in library.settings.profiles]
            encoders = library.encoders(profiles=profiles, device=args.device)
            if specs:  # a model that cannot load must not be remembered
                for encoder in library.encoders(profiles=specs, device=args.device):
                    getattr(encoder, "load", lambda: None)()
            library.add_profiles(specs)
            with _ProgressBar(enabled=not args.json) as bar:
                report = index(library, args.paths, encoders=encoders, progress=bar.update,
                               cancel=cancel, workers=args.workers)
            if not report.cancelled:
                library.store.optimize()
            info = library.info()
    finally:
        signal.signal(signal.SIGINT, previous)
    if args.json:
        print(json.dumps({**report.to_dict(), "library": info["library"]}, indent=2))
    else:
        print(
            f"{report.indexed} files indexed ({report.added} new, {report.updated} changed), "
            f"{report.unchanged} unchanged, {report.removed} removed, {report.segments} segments "
            f"in {report.seconds:.1f} s"
        )
        if report.extended:
            print(f"{report.extended} unchanged files encoded into new spaces")
        if report.errors:
            print(f"{len(report.errors)} files could not be read:")
            for err in report.errors:
                print(f"  {err.path}: {err.reason}")
        if report.cancelled:
            print("interrupted: the library is consistent; run the same command to finish")
    return 130 if report.cancelled else 0


def cmd_search(args: argparse.Namespace) -> int:
    from mmstudio.core.search import SearchQuery, search

    if (args.text is None) == (args.file is None):
        print("mmstudio search: give either TEXT or --file PATH", file=sys.stderr)
        return 2
    query = SearchQuery(text=args.text) if args.text is not None else SearchQuery(path=args.file)
    modalities = [m.strip() for m in args.modality.split(",")] if args.modality else None
    specs = split_specs(args.profile) if args.profile else None
    with _open(args, create=False) as library:
        encoders = library.encoders(profiles=specs, device=args.device)
        results = search(library, query, encoders=encoders, modalities=modalities,
                         limit=args.limit)
    if args.json:
        print(json.dumps({
            "query": query.label,
            "results": [
                {k: r.to_dict()[k] for k in ("path", "modality", "score", "start", "end", "space",
                                              "similarity", "char_start", "char_end", "item_id")}
                for r in results
            ],
        }, indent=2))
    else:
        _print_results(query.label, results)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from mmstudio.core.search import SearchQuery, search_job
    from mmstudio.explain import COLORMAPS, explain, methods_for

    if (args.text is None) == (args.file is None):
        print("mmstudio explain: give either TEXT or --file PATH", file=sys.stderr)
        return 2
    if args.colormap not in COLORMAPS:
        print(f"mmstudio explain: --colormap is one of {', '.join(COLORMAPS)}", file=sys.stderr)
        return 2
    query = SearchQuery(text=args.text) if args.text is not None else SearchQuery(path=args.file)
    with _open(args, create=False) as library:
        outcome = search_job(library, query, limit=args.rank)
        if len(outcome.results) < args.rank:
            print(f"mmstudio explain: only {len(outcome.results)} results", file=sys.stderr)
            return 1
        result = outcome.results[args.rank - 1]
        e = explain(library, query, result, vectors=outcome.vectors, method=args.method)
        methods = methods_for(library, result)
    if args.out is not None and e.heatmap is not None:
        _write_overlay(args.out, e, result, args.colormap)
    if args.json:
        print(json.dumps({
            "result": result.to_dict(), "method": e.method, "methods": methods,
            "similarity": e.similarity, "seconds": e.seconds, "frame_time": e.frame_time,
            "window": e.window, "map_shape": None if e.heatmap is None else list(e.heatmap.shape),
            "tokens": [vars(t) for t in e.tokens], "query_tokens": [vars(t) for t in e.query_tokens],
            "out": str(args.out) if args.out else None,
        }, indent=2))
        return 0
    print(f"{result.path} ({result.modality}, {_moment(result) or 'whole item'})")
    print(f"  {e.label} in {e.space}: similarity {e.similarity:.3f}, {e.seconds:.2f} s "
          f"(also: {', '.join(m for m in methods if m != e.method) or 'none'})")
    for name, tokens in (("query", e.query_tokens), ("item", e.tokens)):
        if tokens:
            top = sorted(tokens, key=lambda t: -t.score)[:8]
            print(f"  {name} tokens, most relevant first: "
                  + ", ".join(f"{t.text!r} {t.weight:+.2f}" for t in top))
    if args.out is not None and e.heatmap is not None:
        print(f"  map written to {args.out}")
    return 0


def _write_overlay(path: Path, e, result, colormap: str) -> None:
    """The map over what it explains (the picture, the frame, the spectrogram), as PNG."""
    import numpy as np
    from PIL import Image

    from mmstudio.core import media
    from mmstudio.explain import blend, spectrogram_picture

    if e.spectrogram is not None:  # low frequencies at the bottom
        base = Image.fromarray(spectrogram_picture(e.spectrogram)).convert("RGB")
        heatmap = e.heatmap[::-1]
    else:
        base = e.frame or media.load_image(result.path, media.DEFAULT_OPTIONS)
        heatmap = e.heatmap
    Image.fromarray(blend(np.asarray(base.convert("RGB")), heatmap, colormap)).save(path)


def _moment(r) -> str:
    if r.start is not None and r.end is not None and r.end > r.start:
        return f"{_clock(r.start)}–{_clock(r.end)}"
    if r.start is not None:
        return f"@{_clock(r.start)}"
    if r.char_start is not None:
        return f"chars {r.char_start}–{r.char_end}"
    return ""


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m:02d}:{s:02d}"


def _print_results(label: str, results) -> None:
    print(f"query: {label}")
    if not results:
        print("  (no results)")
    for n, r in enumerate(results, 1):
        print(f"  {n:2d}. {r.score:.3f}  {r.modality:<6} {r.path}  {_moment(r)}  "
              f"[{r.space} {r.similarity:.3f}]")


def cmd_info(args: argparse.Namespace) -> int:
    with _open(args, create=False) as library:
        info = library.info()
        errors = library.catalog.errors()
    if args.json:
        print(json.dumps({**info, "error_files": [{"path": p, "reason": r} for p, r in errors]},
                         indent=2))
        return 0
    print(f"library: {info['library']}")
    print(f"profiles: {', '.join(info['profiles'])}")
    print(f"items: {info['items']}")
    for modality, n in sorted(info["files_by_modality"].items()):
        print(f"  {modality}: {n} files")
    store = info["store"]
    print(f"segments: {info['segments']}; store: {store['points']} points, "
          f"{store['segments']} store segments, {store['indexed_vectors']} vectors in HNSW")
    for space, n in store["vectors_per_space"].items():
        print(f"  {space}: {n} vectors")
    if errors:
        print(f"files that could not be read: {len(errors)}")
        for path, reason in errors:
            print(f"  {path}: {reason}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from mmstudio.encoders import models

    if args.models_command == "fetch":
        path = models.fetch(args.ref, progress=lambda msg: print(msg, file=sys.stderr))
        print(f"{args.ref}: {models.folder_size(path) / 1e6:.0f} MB in {path}")
        return 0
    if args.models_command == "use":
        profile = args.profile or models.profile_of(args.ref)
        if profile is None:
            raise MmstudioError(f"cannot tell whether {args.ref} is a clip or a clap model; "
                                "add --profile clip or --profile clap")
        ref = str(models.resolve(args.ref)) if Path(args.ref).expanduser().exists() else args.ref
        models.resolve(ref)  # on disk, or say how to fetch it
        with _open(args) as library:
            library.settings.models[profile] = ref
            library.add_profiles([profile])
            print(f"{library.path}: profile {profile} uses {ref}; "
                  f"profiles {', '.join(library.settings.profiles)}")
        return 0
    from mmstudio.core.library import Settings, default_library_path

    folder = Path(args.library).expanduser() if args.library else default_library_path()
    if args.library and not (folder / "settings.json").exists():
        raise MmstudioError(f"no library at {folder}")
    # settings only: no lock, so this works while the app has the library open
    chosen = dict(Settings.load(folder / "settings.json").models)
    infos = models.list_models({ref: profile for profile, ref in chosen.items()})
    if args.json:
        print(json.dumps([{"ref": m.ref, "profile": m.profile, "on_disk": m.on_disk,
                           "size_bytes": m.size_bytes, "path": str(m.path) if m.path else None,
                           "in_use": chosen.get(m.profile or "") == m.ref} for m in infos],
                         indent=2))
        return 0
    print("starter    offline pack (MiniLM-L6, EfficientNet-Lite0, audio features): installed")
    for m in infos:
        where = f"{m.size_bytes / 1e6:8.0f} MB  {m.path}" if m.on_disk else "not on disk"
        mark = "*" if chosen.get(m.profile or "") == m.ref else " "
        print(f"{m.profile:<6}{mark}   {m.ref:<40} {where}")
    print("\n* chosen by this library. Download with: mmstudio models fetch ID")
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    if (sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM")
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")):
        raise MmstudioError(
            "no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set). "
            "Run it on a desktop, under `xvfb-run mmstudio`, or try `mmstudio demo`, "
            "which runs without a window"
        )
    from mmstudio.gui.app import run

    return run(getattr(args, "library", None))


def cmd_demo(args: argparse.Namespace) -> int:
    import platformdirs

    from mmstudio.core.ingest import index
    from mmstudio.core.samples import make_sample_library
    from mmstudio.core.search import SearchQuery, search

    base = Path(platformdirs.user_data_dir("mmstudio"))
    media_dir = make_sample_library(base / "sample-media")
    args.library = getattr(args, "library", None) or base / "libraries" / "sample"
    print(f"sample media: {media_dir}\nlibrary: {args.library}\n")
    with _open(args) as library:
        with _ProgressBar(enabled=True) as bar:
            report = index(library, [media_dir], progress=bar.update)
        print(f"{report.indexed} files indexed, {report.unchanged} unchanged, "
              f"{len(report.errors)} errors, {report.seconds:.1f} s\n")
        queries = [
            SearchQuery(text="a kitten sleeping"),
            SearchQuery(text="music played by an orchestra"),
            SearchQuery(path=media_dir / "images" / "stripes-0.png"),
            SearchQuery(path=media_dir / "sounds" / "chirp.wav"),
        ]
        for query in queries:
            _print_results(query.label, search(library, query, limit=5))
            print()
    return 0


class _ProgressBar:
    """tqdm on stderr, fed by the job's progress callback."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr is not None
        self._bar = None

    def __enter__(self) -> _ProgressBar:
        return self

    def update(self, progress) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=progress.total, unit="file", file=sys.stderr, leave=False)
        self._bar.total = progress.total
        self._bar.n = progress.done
        self._bar.set_postfix(errors=progress.errors, refresh=False)
        self._bar.refresh()

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


if __name__ == "__main__":
    sys.exit(main())

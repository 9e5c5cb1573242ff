"""Items as results: what the grid and previews show for items that no search found
(a labeling queue, a confusion-matrix cell, a map selection)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from mmstudio.core.search import SearchOutcome, SearchResult

# The file an item is shown by, when it has several (a clip's video before its notes).
MAIN_FIRST = ("video", "image", "audio", "text")


def main_file(files: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """(path, modality) of the file that stands for an item."""
    return min(files, key=lambda f: (MAIN_FIRST.index(f[1]) if f[1] in MAIN_FIRST else 9, f[0]))


def item_results(library, item_ids: Sequence[int],
                 scores: Mapping[int, float] | None = None) -> list[SearchResult]:
    """One result per item that has an indexed file, in the order given; its moment is
    the main file's first segment, its score the one given (else 0)."""
    files = library.catalog.item_files(item_ids)
    results = []
    for item in item_ids:
        if item not in files:
            continue
        path, modality = main_file(files[item])
        segments = library.catalog.segments_of(path)
        first = segments[0] if segments else None
        score = float(scores.get(item, 0.0)) if scores else 0.0
        results.append(SearchResult(
            item_id=int(item), path=path, modality=modality, score=score, similarity=score,
            space="", segment_id=first.id if first else 0,
            start=first.start if first else None, end=first.end if first else None,
            char_start=first.char_start if first else None,
            char_end=first.char_end if first else None))
    return results


def items_outcome(library, item_ids: Sequence[int], scores: Mapping[int, float] | None = None,
                  *, progress=None, cancel=None) -> SearchOutcome:
    """Items as a search outcome with no query (a job: the grid shows them as results)."""
    started = time.perf_counter()
    results = item_results(library, list(item_ids), scores)
    return SearchOutcome(None, results, {}, time.perf_counter() - started)

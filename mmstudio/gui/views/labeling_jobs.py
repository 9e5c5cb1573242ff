"""The labeling panel's jobs, run on its TaskSlots: plan the queue, re-plan it, look up
previews. Plain functions taking `progress` and `cancel`, no Qt: tests can call them
directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmstudio.core.items import item_results, main_file
from mmstudio.core.search import SearchResult
from mmstudio.labels.queue import QueuePlan, plan_queue
from mmstudio.labels.schema import Schema
from mmstudio.labels.store import Suggestion

PREFETCH = 12  # items ahead whose previews are looked up in one job


@dataclass(frozen=True)
class Planned:
    plan: QueuePlan
    pool: list[int]
    names: dict[int, str]
    results: dict[int, SearchResult]  # previews of the first items


def plan_session(library, schema: Schema, pool: list[int] | None, order: str, zero_shot: bool,
                 *, progress, cancel) -> Planned:
    """A job: the queue for `pool` (None: the whole library), names and first previews."""
    files = library.catalog.item_files(pool)
    pool = list(files) if pool is None else pool
    plan = plan_queue(library, schema, pool, order, zero_shot=zero_shot, progress=progress,
                      cancel=cancel)
    if plan.scores is not None:
        library.labels.set_suggestions(schema.name, plan.scores.best())
    names = {i: Path(main_file(f)[0]).name for i, f in files.items()}
    results = {r.item_id: r for r in item_results(library, plan.queue[:PREFETCH])}
    return Planned(plan, pool, names, results)


def replan(library, schema: Schema, pool: list[int], plan: QueuePlan, zero_shot: bool, *,
           progress, cancel) -> tuple[QueuePlan, dict[int, Suggestion]]:
    """A job: the active-learning queue again, with what was labeled since."""
    new = plan_queue(library, schema, pool, "active", features=plan.features,
                     zero_shot=zero_shot, progress=progress, cancel=cancel)
    best = new.scores.best() if new.scores is not None else {}
    if best:
        library.labels.set_suggestions(schema.name, best)
    return new, best


def load_items(library, item_ids: list[int], *, progress, cancel) -> dict[int, SearchResult]:
    return {r.item_id: r for r in item_results(library, item_ids)}

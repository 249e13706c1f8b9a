"""The run store as a table: every run best first, each with its summary and its gap to the best
run on the same folds (within the folds' noise or not). What ``kk runs`` prints."""

from __future__ import annotations

from typing import Any

from . import Run, RunStore
from .stats import fold_gap


def run_table(store: RunStore, metric: str, *, complete_only: bool = True,
              ) -> tuple[list[Run], list[dict[str, Any]], Run | None]:
    """(runs best first, their summaries with ``vs_best``, the best run). ``vs_best`` is the paired
    per-fold gap to the best run (None for the best run itself and for runs on other folds)."""
    runs = store.ranked(metric, complete_only=complete_only)
    rows = [r.summary() for r in runs]
    best = store.best(metric, runs)
    for r, s in zip(runs, rows, strict=True):
        same_folds = best is not None and not r.problem and r.meta.get("fold_id") == best.meta.get("fold_id")
        gap = fold_gap(metric, best.scores.get("folds") or [], s["folds"]) \
            if best is not None and same_folds and r is not best else None
        s["vs_best"] = None if gap is None else {"diff": gap.diff, "se": gap.se,
                                                 "indistinguishable": gap.indistinguishable}
    return runs, rows, best

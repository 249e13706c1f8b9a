"""Folds fitted side by side in forked processes, one core each, when a table is small.

On a small table every family fits with one thread (``auto_n_jobs``: threads cost more than they
save there), so on a machine with several cores the folds are independent work for the idle ones.
Threads would not do: the neural family's many small steps hold Python's lock (measured: its fit
slowed from 7.9 to 14.8 s beside the other families in threads). Processes forked from this one
inherit its imports and data, so a worker starts in milliseconds and nothing is pickled but the fold's
row indices and its predictions. ``kk baseline`` queues every family's folds at once
(:func:`run_groups`), so no core waits while another finishes a family's last fold. Where ``fork``
is not the platform's way (Windows, macOS, whose system libraries are not fork-safe) folds run one
after another, as they do on one core.

:func:`fold_workers` decides, a pure function of what the machine and the table report. The fits
are those of the folds one after another (the same seeds, rows and order of adding up; each worker
holds BLAS and OpenMP to one thread, which can move a prediction in its last bits): on the 26 tables
of ``bench/tabular_suite.py`` every submission scored the same either way.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from ..errors import OptionError

SMALL_CELLS = 1_000_000  # rows x columns below which a fit takes one thread (``_base.auto_n_jobs``)

_STATE: dict[str, Any] = {}  # what a forked worker reads: set before the pool forks, never pickled


def can_fork(platform: str = sys.platform) -> bool:
    """Whether folds may be fitted in forked processes here: Linux only (``fork`` is not available
    on Windows, and on macOS its system frameworks may crash a forked child).

    >>> can_fork("linux"), can_fork("darwin"), can_fork("win32")
    (True, False, False)
    """
    return platform.startswith("linux")


def fold_workers(*, cores: int, cells: int, fits: int, n_jobs: int | None, fork: bool,
                 requested: int | None = None) -> int:
    """How many processes fit folds side by side: one a core, at most one a fit, on small tables.
    ``requested`` (``KK_FOLD_WORKERS``, :func:`requested_workers`) overrides the rule: 1 runs the
    folds one after another (a debugger's breakpoint in a family's code, a measurement), more is
    capped at the fits.

    One (folds one after another, each fit on every core it wants) when the user set ``n_jobs`` (the
    threads of one fit), when the table is large (``cells`` = rows x columns of ``SMALL_CELLS`` or
    more: a fit then uses all cores itself, and each worker would hold its own copy of what it
    builds), on one core, or where processes cannot be forked.

    >>> fold_workers(cores=4, cells=891 * 12, fits=5, n_jobs=None, fork=True)   # Kaggle's CPU notebook
    4
    >>> fold_workers(cores=2, cells=500_000 * 15, fits=5, n_jobs=None, fork=True)  # a Playground table
    1
    """
    if not fork:
        return 1
    if requested is not None:
        return max(1, min(requested, fits))
    if n_jobs or cells >= SMALL_CELLS:
        return 1
    return max(1, min(cores, fits))


def requested_workers(environ: Mapping[str, str] = os.environ) -> int | None:
    """``KK_FOLD_WORKERS``, when set: the fold workers the user asked for.

    >>> requested_workers({}), requested_workers({"KK_FOLD_WORKERS": "1"})
    (None, 1)
    """
    raw = environ.get("KK_FOLD_WORKERS", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise OptionError(f"KK_FOLD_WORKERS={raw!r}: expected a whole number of processes, 1 or more "
                          "(1 fits the folds one after another); unset it for kk's choice")
    return int(raw)


def run_groups(fn: Callable[[dict[str, Any], Any], Any], groups: Sequence[Sequence[Any]], *,
               state: dict[str, Any], workers: int, on_done: Callable[[Any], None] | None = None,
               costs: Sequence[float] | None = None) -> Iterator[tuple[int, list[Any]]]:
    """Each group's ``(index, [fn(state, job) for job in group])``, yielded as each group is done.
    With more than one worker every group's jobs are queued at once in one pool of forked
    processes, so the cores go on to the next group while the last jobs of one finish, and the
    caller handles a finished group while the others run. ``costs`` (a job's expected time, one per
    group) queues the costliest groups' jobs first, so that the last jobs to run, while a core may
    wait, are short ones (the longest-first rule). ``on_done(job)`` runs here as a job's result is
    collected (a progress bar's tick); results keep the jobs' order. An exception in a worker is
    raised here, as it would be one after another, and the queued jobs never start."""
    if workers <= 1:
        for g, group in enumerate(groups):
            out = []
            for job in group:
                out.append(fn(state, job))
                if on_done is not None:
                    on_done(job)
            yield g, out
        return
    _STATE.update(state=state, fn=fn)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    try:
        order = sorted(range(len(groups)), key=lambda g: -costs[g]) if costs is not None else range(len(groups))
        where = {pool.submit(_call, job): (g, i) for g in order for i, job in enumerate(groups[g])}
        results: list[list[Any]] = [[None] * len(group) for group in groups]
        left = [len(group) for group in groups]
        yield from ((g, []) for g in range(len(groups)) if not left[g])
        for fut in as_completed(where):
            g, i = where[fut]
            results[g][i] = fut.result()
            if on_done is not None:
                on_done(groups[g][i])
            left[g] -= 1
            if left[g] == 0:
                yield g, results[g]
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        _STATE.clear()
    pool.shutdown()


def _call(job: Any) -> Any:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # one core a worker: BLAS and OpenMP pools too (scikit-learn's dependency)
        return _STATE["fn"](_STATE["state"], job)

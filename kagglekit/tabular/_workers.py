"""Folds fitted side by side in forked processes, one core each, when a table is small.

On a small table every family fits with one thread (``auto_n_jobs``: threads cost more than they
save there), so on a machine with several cores the folds are independent work for the idle ones.
Threads would not do: the neural family's many small steps hold Python's lock (measured: its fit
slowed from 7.9 to 14.8 s beside the other families in threads). Processes forked from this one
inherit its imports and data, so a worker starts in milliseconds and nothing is pickled but the fold's
row indices and its predictions. ``kk baseline`` queues every family's folds at once
(:func:`run_groups`), so no core waits while another finishes a family's last fold. A family
whose module takes long to import (torch: ~2 s, against the network's 0.2 s a fold on a 400-row
table) is fitted by the workers that imported it, and another worker imports it only when that
pays (:func:`pays_to_set_up`): on a small table one worker fits the network while the other fits
the rest, instead of both spending 2 s importing torch. Where ``fork``
is not the platform's way (Windows, macOS, whose system libraries are not fork-safe) folds run one
after another, as they do on one core.

:func:`fold_workers` decides, a pure function of what the machine and the table report. The fits
are those of the folds one after another (the same seeds, rows and order of adding up; each worker
holds BLAS and OpenMP to one thread, which can move a prediction in its last bits): on the 26 tables
of ``bench/tabular_suite.py`` every submission scored the same either way.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import pickle
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from multiprocessing.connection import wait
from typing import Any

from ..errors import OptionError, RunError

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


def pays_to_set_up(*, setup_s: float | None, job_s: float | None, left: int, ready: int) -> bool:
    """Whether a free worker that has not imported a group's module (``TabularModel.fold_setup``:
    torch for the network, ~2 s) should import it to take one of the group's ``left`` waiting jobs,
    while ``ready`` workers have it or are importing it. Yes when none has it; otherwise when the
    import and one job end before the ready workers would have fitted those jobs without it. Not
    while the group has no timed job yet (``job_s`` None): the next job to finish tells.

    >>> pays_to_set_up(setup_s=None, job_s=None, left=5, ready=0)     # someone must import it
    True
    >>> pays_to_set_up(setup_s=1.9, job_s=0.2, left=3, ready=1)       # a small table: the ready worker ends first
    False
    >>> pays_to_set_up(setup_s=1.9, job_s=8.0, left=3, ready=1)       # diamonds: 9.9 s against 24 s
    True
    """
    if ready == 0:
        return True
    if setup_s is None or job_s is None:
        return False
    return setup_s + job_s < left / ready * job_s


def run_groups(fn: Callable[[dict[str, Any], Any], Any], groups: Sequence[Sequence[Any]], *,
               state: dict[str, Any], workers: int, on_done: Callable[[Any], None] | None = None,
               costs: Sequence[float] | None = None,
               setups: Sequence[str | None] | None = None) -> Iterator[tuple[int, list[Any]]]:
    """Each group's ``(index, [fn(state, job) for job in group])``, yielded as each group is done.
    With more than one worker, ``workers`` processes forked from this one take every group's jobs
    from one queue, so the cores go on to the next group while the last jobs of one finish, and the
    caller handles a finished group while the others run. ``costs`` (a job's expected time, one per
    group) queues the costliest groups' jobs first, so that the last jobs to run, while a core may
    wait, are short ones (the longest-first rule). ``setups`` (a module per group, or None) names
    what a group's jobs must import first: a worker imports it only when :func:`pays_to_set_up`,
    and takes the other groups' jobs meanwhile, so on a small table one worker imports torch and
    fits the network while the other fits the rest. ``on_done(job)`` runs here as a job's result is
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
    order = sorted(range(len(groups)), key=lambda g: -costs[g]) if costs is not None else range(len(groups))
    queue = [(g, i) for g in order for i in range(len(groups[g]))]
    _STATE.update(state=state, fn=fn, groups=groups)
    pool = _Pool(workers)  # forked with no other thread running here
    try:
        results: list[list[Any]] = [[None] * len(group) for group in groups]
        left = [len(group) for group in groups]
        yield from ((g, []) for g in range(len(groups)) if not left[g])
        for (g, i), result in pool.run(queue, setups or [None] * len(groups)):
            results[g][i] = result
            if on_done is not None:
                on_done(groups[g][i])
            left[g] -= 1
            if left[g] == 0:
                yield g, results[g]
    except BaseException:  # an error, Ctrl-C, or the caller stopped early: the jobs left are not wanted
        pool.close(abort=True)
        raise
    else:
        pool.close()
    finally:
        _STATE.clear()


class _Pool:
    """Worker processes forked from this one, each fed its jobs through a pipe of its own (no thread
    here: a fork while a thread starts or ends can hang the child, CPython gh-112275)."""

    def __init__(self, workers: int):
        ctx = multiprocessing.get_context("fork")
        self.conns: list[Any] = []
        self.procs: list[Any] = []
        for _ in range(workers):
            here, there = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(there, list(self.conns)), daemon=True)
            proc.start()
            there.close()
            self.conns.append(here)
            self.procs.append(proc)

    def run(self, queue: list[tuple[int, int]], setups: Sequence[str | None]) -> Iterator[tuple[tuple[int, int], Any]]:
        """Each job's ``((group, index), result)`` as it is collected, the jobs handed out in ``queue``'s
        order. Each worker holds up to two jobs (the one it fits, the next one), so it goes on while
        the caller handles a result; only ``(group, index)`` goes down the pipe (the jobs are in
        ``_STATE``), so a send here never waits on a worker that is sending a large result."""
        loaded: list[set[str]] = [set() for _ in self.procs]  # what each worker imported or was sent to
        setup_s: dict[str, float] = {}
        job_s: dict[int, list[float]] = {}
        held: list[list[tuple[int, int]]] = [[] for _ in self.procs]
        while queue or any(held):
            for slot in (0, 1):
                for w in [w for w in range(len(self.procs)) if len(held[w]) == slot]:
                    pick = self._pick(w, queue, held, setups, loaded, setup_s, job_s)
                    if pick is None and queue and not any(held):
                        pick = queue[0]  # never wait on nothing (pays_to_set_up's rule does not leave it so)
                    if pick is not None:
                        queue.remove(pick)
                        setup = setups[pick[0]]
                        if setup:
                            loaded[w].add(setup)
                        try:
                            self.conns[w].send((*pick, setup))
                        except OSError:
                            raise self._died(w) from None
                        held[w].append(pick)
            for ready in wait([self.conns[w] for w in range(len(self.procs)) if held[w]]):
                w = self.conns.index(ready)
                try:
                    status, result, imported, seconds = self.conns[w].recv()
                except (EOFError, OSError):  # its end of the pipe closed, or reset with a job unread
                    raise self._died(w) from None
                if status == "error":
                    raise result if isinstance(result, BaseException) else RunError(str(result))
                g, i = held[w].pop(0)
                done_setup = setups[g]
                if done_setup and imported is not None:
                    setup_s[done_setup] = imported
                job_s.setdefault(g, []).append(seconds)
                yield (g, i), result

    @staticmethod
    def _pick(w: int, queue: list[tuple[int, int]], held: list[list[tuple[int, int]]],
              setups: Sequence[str | None], loaded: list[set[str]], setup_s: dict[str, float],
              job_s: dict[int, list[float]]) -> tuple[int, int] | None:
        """Worker ``w``'s next job: the first queued one it can start as it is, or whose module no
        worker has yet (someone must import it, and the queue's order is the longest-first rule's);
        else the first whose import pays (:func:`pays_to_set_up`, counting the group's jobs that the
        workers with the module still hold); else none for now."""
        for g, i in queue:
            if not setups[g] or setups[g] in loaded[w] or not any(setups[g] in s for s in loaded):
                return g, i
        for g, i in queue:
            timed = job_s.get(g)
            if pays_to_set_up(setup_s=setup_s.get(setups[g] or ""), job_s=sum(timed) / len(timed) if timed else None,
                              left=sum(q == g for q, _ in queue) + sum(q == g for h in held for q, _ in h),
                              ready=sum(setups[g] in s for s in loaded)):
                return g, i
        return None

    def _died(self, w: int) -> RunError:
        return RunError(f"a fold worker (pid {self.procs[w].pid}) died without a result (out of memory?); "
                        "KK_FOLD_WORKERS=1 fits the folds one after another")

    def close(self, abort: bool = False) -> None:
        """Stop the workers: each ends once told, or at once with ``abort`` (a job's result not wanted)."""
        for conn, proc in zip(self.conns, self.procs, strict=True):
            if abort:
                proc.terminate()
                continue
            try:
                conn.send(None)
            except OSError:
                proc.terminate()
        for conn, proc in zip(self.conns, self.procs, strict=True):
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join()
            conn.close()


def _serve(conn: Any, inherited: list[Any]) -> None:
    """A worker: fit each job it is sent, one core, and send back (status, result, import seconds, fit seconds)."""
    from threadpoolctl import threadpool_limits

    for other in inherited:  # the other workers' pipes, inherited from the parent
        other.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the workers
    while (msg := conn.recv()) is not None:
        g, i, setup = msg
        job = _STATE["groups"][g][i]
        imported = None
        if setup and setup not in sys.modules:
            t = time.perf_counter()
            importlib.import_module(setup)
            imported = time.perf_counter() - t
        t = time.perf_counter()
        try:
            with threadpool_limits(1):  # one core a worker: BLAS and OpenMP pools too (scikit-learn's dependency)
                result = _STATE["fn"](_STATE["state"], job)
        except Exception as e:  # sent as itself when it pickles, else as its text; its traceback as a note
            e.add_note("in a fold worker:\n" + traceback.format_exc())
            conn.send(("error", e if _pickles(e) else RuntimeError(f"{type(e).__name__}: {e}"), None, 0.0))
            continue
        conn.send(("ok", result, imported, time.perf_counter() - t))


def _pickles(obj: Any) -> bool:
    try:
        pickle.loads(pickle.dumps(obj))
    except Exception:
        return False
    return True

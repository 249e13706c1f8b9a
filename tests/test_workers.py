"""Folds fitted side by side in forked processes (``kagglekit.tabular._workers``): the rule over the
machines users have, the pool itself, and the same predictions as folds one after another."""

from __future__ import annotations

import os

import numpy as np
import pytest

from kagglekit.data import load_data
from kagglekit.errors import DataError, OptionError, RunError
from kagglekit.folds import get_folds
from kagglekit.tabular import _workers, crossval
from kagglekit.tabular._workers import can_fork, fold_workers, requested_workers, run_groups
from kagglekit.tabular.features import build_features
from kagglekit.workspace import resolve

from .conftest import make_tabular


@pytest.mark.parametrize("cores, cells, fits, n_jobs, fork, requested, expected", [
    (2, 891 * 12, 5, None, True, None, 2),            # this machine, Titanic
    (4, 891 * 12, 5, None, True, None, 4),            # Kaggle's CPU notebook
    (16, 891 * 12, 5, None, True, None, 5),           # a workstation: no more workers than fits
    (1, 891 * 12, 5, None, True, None, 1),            # one core
    (4, 891 * 12, 5, 2, True, None, 1),               # the user chose the threads of one fit
    (4, 520_960 * 15, 5, None, True, None, 1),        # a Playground table: each fit takes every core
    (4, 891 * 12, 5, None, False, None, 1),           # macOS, Windows: no fork
    (4, 891 * 12, 1, None, True, None, 1),            # one fit (kk tune's single fold)
    (4, 891 * 12, 5, None, True, 1, 1),               # KK_FOLD_WORKERS=1: one after another
    (2, 520_960 * 15, 5, None, True, 8, 5),           # KK_FOLD_WORKERS=8: as asked, at most a fit each
    (4, 891 * 12, 5, None, False, 3, 1),              # asked for, but no fork here
])
def test_fold_workers_over_the_machines_users_have(cores, cells, fits, n_jobs, fork, requested, expected):
    assert fold_workers(cores=cores, cells=cells, fits=fits, n_jobs=n_jobs, fork=fork,
                        requested=requested) == expected


@pytest.mark.parametrize("raw", ["0", "two", "-1"])
def test_a_bad_kk_fold_workers_is_one_line_naming_it(raw):
    with pytest.raises(OptionError, match=f"KK_FOLD_WORKERS='{raw}': expected a whole number"):
        requested_workers({"KK_FOLD_WORKERS": raw})


def test_fork_only_on_linux():
    assert can_fork("linux") and not can_fork("darwin") and not can_fork("win32")


def _pid_and_square(state, job):
    if job == state["bad"]:
        raise DataError(f"job {job} is bad")
    return os.getpid(), job * job


def test_run_groups_keeps_the_jobs_order_and_runs_in_other_processes():
    done = []
    (g, out), = run_groups(_pid_and_square, [list(range(7))], state={"bad": None}, workers=2, on_done=done.append)
    assert g == 0
    assert [sq for _, sq in out] == [j * j for j in range(7)]
    assert sorted(done) == list(range(7))
    pids = {pid for pid, _ in out}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert not _workers._STATE  # nothing left behind for the next pool
    (_, inline), = run_groups(_pid_and_square, [[3]], state={"bad": None}, workers=1)
    assert inline == [(os.getpid(), 9)]


def test_an_error_in_a_worker_reaches_the_caller_as_itself():
    with pytest.raises(DataError, match="job 4 is bad"):
        list(run_groups(_pid_and_square, [list(range(8))], state={"bad": 4}, workers=2))
    assert not _workers._STATE


def _wait_for_or_make(state, job):
    """Job "wait" finishes only once job "make" has run: true only when both are queued at once."""
    import time

    flag = state["flag"]
    if job == "make":
        flag.write_text("made")
        return "made"
    for _ in range(100):
        if flag.exists():
            return "waited"
        time.sleep(0.05)
    raise DataError("the second group never started while the first was running")


def test_run_groups_queues_every_group_at_once_and_yields_each_as_it_is_done(tmp_path):
    state = {"flag": tmp_path / "flag"}
    out = list(run_groups(_wait_for_or_make, [["wait"], ["make"]], state=state, workers=2))
    assert out == [(1, ["made"]), (0, ["waited"])]  # "make" was done first: yielded first, with its index
    with pytest.raises(DataError, match="never started"):  # one after another, it cannot: the test can fail
        list(run_groups(_wait_for_or_make, [["wait"], ["make"]], state={"flag": tmp_path / "flag2"}, workers=1))


def _log_start(state, job):
    import time

    with open(state["log"], "a") as fh:
        fh.write(f"{os.getpid()}:{job}\n")
    time.sleep(0.2)  # long beside a worker's start, so each worker has taken its job before the next is due
    return job


def test_the_costliest_groups_jobs_are_queued_first(tmp_path):
    log = tmp_path / "started"
    groups = [["cheap1", "cheap2", "cheap3"], ["dear1", "dear2", "dear3"]]
    out = dict(run_groups(_log_start, groups, state={"log": log}, workers=2, costs=[1.0, 4.0]))
    assert out == {0: groups[0], 1: groups[1]}  # each job's result in its place
    # two workers take the queue in its order, each its first job and the next it holds: dear1, dear2,
    # then dear3 and cheap1, whichever finishes first
    assert _first_two_of_each_worker(log) == {"dear1", "dear2", "dear3", "cheap1"}
    log.unlink()
    list(run_groups(_log_start, groups, state={"log": log}, workers=2))  # no costs: the groups' order
    assert _first_two_of_each_worker(log) == {"cheap1", "cheap2", "cheap3", "dear1"}


def _first_two_of_each_worker(log) -> set[str]:
    by_worker: dict[str, list[str]] = {}
    for line in log.read_text().split():
        pid, job = line.split(":")
        by_worker.setdefault(pid, []).append(job)
    assert len(by_worker) == 2
    return {job for jobs in by_worker.values() for job in jobs[:2]}


def _pid_after(state, job):
    """A job of the group that needs the slow module checks it was imported first; returns its pid."""
    import sys
    import time

    if job.startswith("setup"):
        assert "kk_slow_module" in sys.modules
    time.sleep(state["seconds"][job[:5]])
    return os.getpid()


@pytest.mark.parametrize("job_s, workers_importing", [(0.05, 1), (0.8, 2)])
def test_a_slow_import_is_paid_by_a_second_worker_only_when_it_pays(tmp_path, monkeypatch, job_s, workers_importing):
    """Group 0's jobs need a module that takes 0.5 s to import. Short jobs (a small table's network
    folds): one worker imports it and fits them while the other fits group 1. Long jobs: once one
    is timed, the other worker imports it too, to share the jobs left."""
    (tmp_path / "kk_slow_module.py").write_text("import time\ntime.sleep(0.5)\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # the forked workers inherit it
    groups = [[f"setup{i}" for i in range(4)], [f"plain{i}" for i in range(8)]]
    out = dict(run_groups(_pid_after, groups, state={"seconds": {"setup": job_s, "plain": 0.05}}, workers=2,
                          costs=[5.0, 1.0], setups=["kk_slow_module", None]))
    assert len(out[0]) == 4 and len(out[1]) == 8
    assert len(set(out[0])) == workers_importing, out
    assert "kk_slow_module" not in __import__("sys").modules  # imported in the workers only


@pytest.mark.parametrize("model, task", [("lgbm", "binary"), ("linear", "multiclass"), ("nn", "regression"),
                                         ("rf", "regression")])
def test_folds_in_workers_predict_what_folds_one_after_another_predict(ws, monkeypatch, model, task):
    make_tabular(ws.root, task=task, n=300, n_test=60)
    _, comp = resolve("synth", ws)
    data = load_data(comp, ws)
    folds, feats = get_folds(data, ws), build_features(data)
    used = []
    real = crossval.fold_workers

    def counted(**kw):
        used.append(real(**{**kw, "cores": 2}))  # two workers even on a one-core machine
        return used[-1]

    monkeypatch.setattr(crossval, "fold_workers", counted)
    ticks: list[int] = []
    side_by_side = crossval.fit_predict_cv(feats, data, folds, model, on_fold=ticks.append, bags=2)
    monkeypatch.setattr(crossval, "fold_workers", lambda **kw: 1)
    one_by_one = crossval.fit_predict_cv(feats, data, folds, model, bags=2)
    assert used == [2] and sorted(ticks) == list(range(folds.k))
    assert side_by_side.seconds > 0 and one_by_one.seconds > 0  # the family's fit time, for its run's timings
    for a, b in ((side_by_side.oof, one_by_one.oof), (side_by_side.test, one_by_one.test)):
        np.testing.assert_allclose(a["y"], b["y"], rtol=1e-6, atol=1e-9)
    assert side_by_side.fold_scores == pytest.approx(one_by_one.fold_scores, abs=1e-9)
    assert side_by_side.importance.index.tolist() == one_by_one.importance.index.tolist()


def test_cross_validate_yields_each_model_as_fit_predict_cv_would(ws, monkeypatch):
    make_tabular(ws.root, task="binary", n=300, n_test=60)
    _, comp = resolve("synth", ws)
    data = load_data(comp, ws)
    folds, feats = get_folds(data, ws), build_features(data)
    monkeypatch.setattr(crossval, "fold_workers", lambda **kw: 2)
    together = list(crossval.cross_validate(feats, data, folds, ["linear", "lgbm"],
                                            params={"lgbm": {"n_estimators": 50}}))
    assert sorted(m for m, _ in together) == ["lgbm", "linear"]  # each once, the first done first
    for model, cv in together:
        alone = crossval.fit_predict_cv(feats, data, folds, model, params={"lgbm": {"n_estimators": 50}}.get(model))
        np.testing.assert_allclose(cv.oof["y"], alone.oof["y"], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(cv.test["y"], alone.test["y"], rtol=1e-6, atol=1e-9)
    assert not np.allclose(together[0][1].oof["y"], together[1][1].oof["y"])  # two different models
    assert all(cv.seconds > 0 for _, cv in together)


def _die_on_3(state, job):
    if job == 3:
        os._exit(1)  # as the kernel's out-of-memory killer ends a worker: no exception, no result
    return job


def test_a_worker_that_dies_is_one_error_naming_the_way_round_it():
    with pytest.raises(RunError, match="died without a result.*KK_FOLD_WORKERS=1"):
        list(run_groups(_die_on_3, [list(range(6))], state={}, workers=2))
    assert not _workers._STATE


def _sleep_or_fail(state, job):
    import time

    if job == "bad":
        time.sleep(0.3)  # the other worker has started its long job
        raise DataError("bad job")
    time.sleep(60)


def test_an_error_stops_the_other_workers_at_once():
    """The long job's result is not wanted once another job failed (or on Ctrl-C): its worker is
    stopped, not waited for."""
    import time

    t = time.perf_counter()
    with pytest.raises(DataError, match="bad job"):
        list(run_groups(_sleep_or_fail, [["long", "bad"]], state={}, workers=2))
    assert time.perf_counter() - t < 20
    assert not __import__("multiprocessing").active_children()

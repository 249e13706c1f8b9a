import numpy as np
import pandas as pd
import pytest

from kagglekit.blend import ensemble
from kagglekit.data import load_data
from kagglekit.errors import OptionError, RunError
from kagglekit.submissions import read_submission, validate_submission

from .conftest import make_tabular, save_run


def _members_with_independent_errors(ws, task, metric):
    make_tabular(ws.root, task=task, metric=metric, n=600)
    data = load_data(ws.competition("synth"), ws)
    rng = np.random.default_rng(3)
    n, m = len(data.train), len(data.test)
    if task == "regression":
        y = data.train.y.to_numpy()
        truth_test = data.solution.y.to_numpy()
        a = y * rng.lognormal(0, 0.25, n), truth_test * rng.lognormal(0, 0.25, m)
        b = y * rng.lognormal(0, 0.35, n), truth_test * rng.lognormal(0, 0.35, m)
        runs = [save_run(ws, data, {"y": a[0]}, {"y": a[1]}, "a"), save_run(ws, data, {"y": b[0]}, {"y": b[1]}, "b")]
    else:
        y = data.train.y.to_numpy()
        logit = np.where(y == 1, 1.0, -1.0)

        def member(noise):
            p = 1 / (1 + np.exp(-(logit + rng.normal(0, noise, n))))
            pt = rng.random(m)
            return {"y": np.column_stack([1 - p, p])}, {"y": np.column_stack([1 - pt, pt])}

        runs = [save_run(ws, data, *member(1.2), "a"), save_run(ws, data, *member(1.5), "b")]
    return data, runs


@pytest.mark.parametrize("task, metric", [("binary", "auc"), ("binary", "logloss"), ("regression", "rmsle")])
def test_optimised_weights_beat_both_members_and_greedy_matches_best(ws, task, metric):
    data, runs = _members_with_independent_errors(ws, task, metric)
    from kagglekit.metrics import get_metric

    m = get_metric(metric)
    best_member = min((r.cv for r in runs), key=m.sort_key)
    opt = ensemble("synth", method="weights", workspace=ws, submit=False)
    assert all(m.better(opt.cv, r.cv) for r in runs)
    assert sum(w for _, _, w in opt.members) == pytest.approx(1.0) and all(w >= 0 for _, _, w in opt.members)
    greedy = ensemble("synth", method="greedy", workspace=ws, submit=False)
    assert greedy.cv == best_member or m.better(greedy.cv, best_member)
    for method in ("mean", "rank", "stacking"):
        r = ensemble("synth", method=method, workspace=ws, submit=False)
        assert np.isfinite(r.cv) and r.run.complete
    # ensembles are never blended into later ensembles by default
    assert len(ensemble("synth", workspace=ws, submit=False).members) == 2


def test_stacking_score_is_honest_on_noise(ws):
    make_tabular(ws.root, task="binary", metric="auc", n=600)
    data = load_data(ws.competition("synth"), ws)
    rng = np.random.default_rng(0)
    for i in range(6):  # members that carry no signal at all
        p, pt = rng.random(len(data.train)), rng.random(len(data.test))
        save_run(ws, data, {"y": np.column_stack([1 - p, p])}, {"y": np.column_stack([1 - pt, pt])}, f"noise{i}")
    r = ensemble("synth", method="stacking", workspace=ws, submit=False)
    assert r.cv < 0.58  # an in-sample fit of 6 features would look better than chance


def test_blending_runs_with_different_folds_is_refused(ws):
    data, runs = _members_with_independent_errors(ws, "binary", "auc")
    other = save_run(ws, data, {"y": runs[0].oof()[["y:0", "y:1"]].to_numpy()},
                     {"y": runs[0].test()[["y:0", "y:1"]].to_numpy()}, "c", fold_id="otherfolds12")
    with pytest.raises(RunError) as e:
        ensemble("synth", [runs[0].id, other.id], workspace=ws)
    assert runs[0].id in str(e.value) and other.id in str(e.value) and "different fold assignments" in str(e.value)
    # without a run list, the runs on other folds are skipped and reported
    r = ensemble("synth", workspace=ws, submit=False)
    assert {m[0] for m in r.members} == {runs[0].id, runs[1].id} and any(other.id in s for s in r.skipped)


def test_unknown_method(ws):
    with pytest.raises(OptionError, match="did you mean 'greedy'"):
        ensemble("synth", method="gredy", workspace=ws)


def test_ensemble_of_baseline_writes_valid_submission(ws):
    from kagglekit.tabular.baseline import baseline

    make_tabular(ws.root, task="multiclass")
    b = baseline("synth", workspace=ws, submit=False)
    r = ensemble("synth", workspace=ws)
    assert {m[0] for m in r.members} == {x.run.id for x in b.results}
    data = load_data(ws.competition("synth"), ws)
    assert validate_submission(data, read_submission(r.submission)) == []
    assert r.cv >= max(x.cv for x in b.results)
    assert r.holdout is not None
    oof = r.run.oof()
    assert isinstance(oof, pd.DataFrame) and len(oof) == len(data.train)

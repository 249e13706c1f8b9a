import numpy as np
import pandas as pd
import pytest

from kagglekit.data import load_data
from kagglekit.folds import assign_folds, get_folds
from kagglekit.spec import parse_spec


def _comp(cv: str, task: str = "binary", extra_targets: str = ""):
    raw = f"""
id = "id"
metric = "{'accuracy' if task != 'regression' else 'rmse'}"
[[targets]]
name = "y"
task = "{task}"
{extra_targets}
[cv]
{cv}
"""
    import tomllib
    from pathlib import Path

    return parse_spec(tomllib.loads(raw), Path("/x/demo/competition.toml"))


def _frame(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": np.arange(n), "y": (rng.random(n) < 0.2).astype(int),
                         "g": rng.integers(0, 40, n), "z": rng.choice(["p", "q", "r"], n),
                         "t": pd.date_range("2020-01-01", periods=n, freq="h").astype(str)})


def test_kfold_deterministic_and_balanced():
    df = _frame()
    comp = _comp("kind='kfold'\nk=5\nseed=1")
    a, b = assign_folds(df, comp), assign_folds(df, comp)
    np.testing.assert_array_equal(a, b)
    assert np.bincount(a).tolist() == [60] * 5
    c = assign_folds(df, _comp("kind='kfold'\nk=5\nseed=2"))
    assert (a != c).any()


def test_stratified_keeps_class_ratio():
    df = _frame()
    fold = assign_folds(df, _comp("kind='stratified'\nk=5"))
    rates = [df.y[fold == f].mean() for f in range(5)]
    assert max(rates) - min(rates) < 0.02


def test_stratified_regression_bins():
    df = _frame().assign(y=np.arange(300, dtype=float))
    fold = assign_folds(df, _comp("kind='stratified'\nk=5", task="regression"))
    means = [df.y[fold == f].mean() for f in range(5)]
    assert max(means) - min(means) < 10


def test_group_never_splits_a_group():
    df = _frame()
    fold = assign_folds(df, _comp("kind='group'\ngroup='g'\nk=5"))
    assert (df.groupby("g")["id"].apply(lambda s: fold[s.index].max() - fold[s.index].min()) == 0).all()
    assert set(fold) == set(range(5))


def test_group_freq_keeps_whole_days_together():
    df = _frame()
    fold = assign_folds(df, _comp("kind='group'\ngroup='t'\ngroup_freq='D'\nk=4"))
    day = pd.to_datetime(df.t).dt.date
    assert pd.Series(fold).groupby(day.to_numpy()).nunique().max() == 1


def test_time_ordered_blocks_are_contiguous():
    df = _frame().sample(frac=1, random_state=0).reset_index(drop=True)
    fold = assign_folds(df, _comp("kind='time-ordered'\ntime='t'\nk=3"))
    t = pd.to_datetime(df.t)
    for f in range(2):
        assert t[fold == f].max() < t[fold == f + 1].min()


def test_multilabel_stratified_balances_both_targets():
    df = _frame(600)
    comp = _comp("kind='multilabel-stratified'\nk=5", task="multiclass",
                 extra_targets="[[targets]]\nname='z'\ntask='multiclass'\nsubmit=false")
    fold = assign_folds(df, comp)
    assert np.bincount(fold).min() >= 110
    for col in ("y", "z"):
        share = pd.crosstab(fold, df[col], normalize="index")
        assert (share.max() - share.min()).max() < 0.05


def test_too_few_rows():
    from kagglekit.errors import DataError

    with pytest.raises(DataError, match="cannot be split into k=5"):
        assign_folds(_frame(3), _comp("kind='kfold'\nk=5"))


def test_shared_folds_are_stored_and_reused(ws):
    from .conftest import make_tabular

    make_tabular(ws.root)
    comp = ws.competition("synth")
    data = load_data(comp, ws)
    f1 = get_folds(data, ws)
    stored = ws.runs_dir("synth") / "folds" / f"{f1.id}.parquet"
    assert stored.is_file()
    # the stored assignment is what later runs get, even if the algorithm would now differ (as if an
    # older kagglekit had written another assignment, with its checksum)
    from kagglekit.folds import _digest

    df = pd.read_parquet(stored)
    df["fold"] = (df["fold"] + 1) % comp.cv.k
    df.to_parquet(stored, index=False)
    stored.with_suffix(".sha1").write_text(_digest(df[comp.id_column], df["fold"].to_numpy()) + "\n")
    f2 = get_folds(data, ws)
    assert f2.id == f1.id and (f2.fold == (f1.fold + 1) % comp.cv.k).all()
    # other data gives another assignment id
    data.train = data.train.iloc[:-1]
    assert get_folds(data, ws).id != f1.id


def test_fold_files_are_checked_rebuilt_or_refused(ws_path, ws):
    """#14.1: a truncated fold file is moved aside and rebuilt; out-of-range or shuffled values are
    refused (they would silently mix validation rows into training)."""
    import warnings as _w

    from kagglekit.data import load_data
    from kagglekit.errors import DataError
    from kagglekit.folds import folds_path, get_folds

    from .conftest import make_tabular

    make_tabular(ws_path, "synth")
    data = load_data(ws.competition("synth"), ws)
    first = get_folds(data, ws)
    path = folds_path(ws, data.comp, first.id)
    assert path.with_suffix(".sha1").is_file()
    path.write_bytes(path.read_bytes()[:50])
    with pytest.warns(UserWarning, match="unreadable .* moved to .*broken.* and rebuilt"):
        again = get_folds(data, ws)
    assert (again.fold == first.fold).all() and list(path.parent.glob("*.broken-*"))

    stored = pd.read_parquet(path)
    stored.loc[0, "fold"] = 7
    stored.to_parquet(path, index=False)
    with pytest.raises(DataError, match=r"fold values must be 0\.\.3, found 7"):
        get_folds(data, ws)
    stored["fold"] = np.random.default_rng(0).permutation(first.fold)  # same counts, rows moved
    stored.to_parquet(path, index=False)
    with _w.catch_warnings():
        _w.simplefilter("error")
        with pytest.raises(DataError, match="no longer matches its checksum"):
            get_folds(data, ws)

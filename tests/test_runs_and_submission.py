import json

import numpy as np
import pandas as pd
import pytest

from kagglekit.data import load_data
from kagglekit.errors import RunError, SubmissionError
from kagglekit.folds import get_folds
from kagglekit.runs import RunStore, from_frame, target_info, to_frame
from kagglekit.submissions import (
    build_submission,
    check_submission,
    score_submission,
    validate_submission,
    write_submission,
)

from .conftest import make_tabular


def _run(ws, data, p1, label="m"):
    comp = data.comp
    targets = target_info(comp, data.train)
    folds = get_folds(data, ws)
    store = RunStore(ws, comp.name)
    w = store.create("tabular", label, {"models": [label]})
    n, m = len(data.train), len(data.test)
    oof = {"y": np.column_stack([1 - p1[:n], p1[:n]])}
    test = {"y": np.column_stack([1 - p1[n:n + m], p1[n:n + m]])}
    w.save_predictions(to_frame(data.train.row_id, "row_id", oof, targets),
                       to_frame(data.test.row_id, "row_id", test, targets))
    w.save_scores({"cv": float(p1.mean())})
    return w.finish(comp, ws, fold_id=folds.id, targets=targets, timings={})


def test_runs_never_collide_and_are_ranked(ws):
    make_tabular(ws.root)
    data = load_data(ws.competition("synth"), ws)
    rng = np.random.default_rng(0)
    runs = [_run(ws, data, rng.random(500) * s, "m") for s in (0.2, 0.9, 0.5)]
    assert len({r.path for r in runs}) == 3  # same second, same label: still three folders
    store = RunStore(ws, "synth")
    ranked = store.ranked("accuracy")
    assert [r.cv for r in ranked] == sorted([r.cv for r in runs], reverse=True)
    meta = ranked[0].meta
    assert meta["fold_id"] and meta["versions"]["pandas"] and meta["status"] == "complete"
    assert meta["targets"]["y"]["classes"] == ["0", "1"]
    assert set(ranked[0].oof().columns) == {"row_id", "y:0", "y:1"}
    assert json.loads((ranked[0].path / "config.json").read_text())["kind"] == "tabular"


def test_incomplete_runs_are_hidden_and_get_errors(ws):
    make_tabular(ws.root)
    store = RunStore(ws, "synth")
    w = store.create("tabular", "crashed", {})
    assert store.runs() == [] and len(store.runs(complete_only=False)) == 1
    with pytest.raises(RunError, match="oof.parquet is missing"):
        store.get(w.id).oof()
    with pytest.raises(RunError, match="no run 'nope'"):
        store.get("nope")
    with pytest.raises(RunError):
        store.get("../synth")


def test_submission_round_trip_and_validation(ws):
    make_tabular(ws.root)
    data = load_data(ws.competition("synth"), ws)
    rng = np.random.default_rng(1)
    run = _run(ws, data, rng.random(500))
    sub = build_submission(data, run.test(), run.targets)
    assert list(sub.columns) == ["row_id", "y"] and sub["y"].isin([0, 1]).all()
    assert sub["row_id"].tolist() == data.sample["row_id"].tolist()
    assert validate_submission(data, sub) == []
    # every failure is caught with a clear message
    assert "rows, expected 100" in validate_submission(data, sub.iloc[:-1])[0]
    bad_ids = sub.assign(row_id=sub.row_id + 10_000)
    assert any("test ids are missing" in p for p in validate_submission(data, bad_ids))
    assert any("columns are" in p for p in validate_submission(data, sub.rename(columns={"y": "Y"})))
    nan = sub.astype({"y": float})
    nan.loc[0, "y"] = np.nan
    assert "missing values (NaN)" in validate_submission(data, nan)[0]
    assert "outside the classes" in validate_submission(data, sub.assign(y=7))[0]
    with pytest.raises(SubmissionError, match="more problems"):
        check_submission(data, bad_ids.iloc[:-3])


def test_write_submission_never_overwrites(ws):
    make_tabular(ws.root)
    data = load_data(ws.competition("synth"), ws)
    run = _run(ws, data, np.random.default_rng(2).random(500))
    sub = build_submission(data, run.test(), run.targets)
    p1 = write_submission(data, ws, sub, "same")
    p2 = write_submission(data, ws, sub, "same")
    assert p1 != p2 and p1.is_file() and p2.is_file()
    with pytest.raises(SubmissionError):
        write_submission(data, ws, sub.iloc[:10], "short")
    assert not (ws.submissions_dir("synth") / "short.csv").exists()


def test_score_submission_against_solution(ws):
    make_tabular(ws.root)
    data = load_data(ws.competition("synth"), ws)
    truth = data.solution.set_index("row_id").loc[data.sample.row_id, "y"].to_numpy()
    perfect = pd.DataFrame({"row_id": data.sample.row_id, "y": truth})
    assert score_submission(data, perfect, data.solution) == 1.0
    flipped = perfect.assign(y=1 - truth)
    assert score_submission(data, flipped, data.solution) == 0.0


def test_prediction_frame_round_trip():
    targets = {"a": {"classes": ["x", "y", "z"]}, "b": {"classes": None}}
    pa, pb = np.random.default_rng(0).random((4, 3)), np.arange(4.0)
    df = to_frame(np.arange(4), "id", {"a": pa, "b": pb}, targets)
    assert list(df.columns) == ["id", "a:x", "a:y", "a:z", "b"]
    np.testing.assert_allclose(from_frame(df, "a", ["x", "y", "z"]), pa)
    np.testing.assert_allclose(from_frame(df, "b", None), pb)

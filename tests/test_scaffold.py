"""kk new on real data sets no spec was written for (scikit-learn's bundled ones), then kk baseline."""

import numpy as np
import pandas as pd
import pytest

from kagglekit.errors import SpecError
from kagglekit.scaffold import guess, new_competition
from kagglekit.tabular.baseline import baseline


def _kaggle_layout(folder, df, target, id_col="id", sample_value=0, seed=0):
    rng = np.random.default_rng(seed)
    df = df.copy()
    df.insert(0, id_col, np.arange(len(df)) + 1000)
    test_rows = rng.random(len(df)) < 0.25
    folder.mkdir(parents=True)
    df[~test_rows].to_csv(folder / "train.csv", index=False)
    df[test_rows].drop(columns=target).to_csv(folder / "test.csv", index=False)
    df[test_rows][[id_col]].assign(**{target: sample_value}).to_csv(folder / "sample_submission.csv", index=False)


def test_new_on_breast_cancer_then_baseline_without_edits(ws):
    from sklearn.datasets import load_breast_cancer

    bc = load_breast_cancer(as_frame=True).frame
    _kaggle_layout(ws.root / "data" / "cancer", bc, "target", sample_value=0.5)
    path, g = new_competition("cancer", ws)
    assert g.id_column == "id" and g.targets == [("target", "binary")] and g.metric == "auc"
    assert "check it" in path.read_text().lower() or "guess" in path.read_text()
    r = baseline("cancer", workspace=ws)
    assert r.best.cv > 0.95 and r.submission.is_file()
    with pytest.raises(SpecError, match="already exists"):
        new_competition("cancer", ws)


def test_new_on_diabetes_regression_with_a_date_column(ws):
    from sklearn.datasets import load_diabetes

    df = load_diabetes(as_frame=True, scaled=False).frame
    df["visit_date"] = pd.date_range("2019-01-01", periods=len(df), freq="D").strftime("%Y-%m-%d")
    _kaggle_layout(ws.root / "data" / "diabetes", df, "target", sample_value=0.0)
    path, g = new_competition("diabetes", ws)
    assert g.targets == [("target", "regression")] and g.metric in ("rmse", "rmsle")
    assert g.date_columns == ["visit_date"]
    r = baseline("diabetes", models=("lgbm",), workspace=ws)
    assert np.isfinite(r.best.cv)


def test_guess_errors(tmp_path):
    from kagglekit.errors import DataError

    with pytest.raises(DataError, match="no such folder"):
        guess(tmp_path / "missing")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "other.csv").write_text("a\n1\n")
    with pytest.raises(DataError, match="no training file"):
        guess(tmp_path / "x")

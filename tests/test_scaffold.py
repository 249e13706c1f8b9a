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


def _photo_set(folder, targets: dict, extra: dict, n=40, n_test=10):
    """A csv-layout photo set: images/<id>.png, train.csv with the targets and extra labels, and a
    sample submission holding the submitted targets (placeholder values, as Kaggle's do)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True)
    for i in range(n + n_test):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / "images" / f"{i}.png")
    train = pd.DataFrame({"id": range(n), **{k: v(rng, n) for k, v in {**targets, **extra}.items()}})
    train.to_csv(folder / "train.csv", index=False)
    sample = pd.DataFrame({"id": range(n, n + n_test), **{k: train[k].iloc[0] for k in targets}})
    sample.to_csv(folder / "sample_submission.csv", index=False)


def test_new_on_photos_with_several_targets_keeps_every_submitted_column(ws):
    data = ws.root / "data" / "shop"
    _photo_set(data, {"kind": lambda r, n: r.choice(["shirt", "shoe", "bag"], n),
                      "gender": lambda r, n: r.choice(["Men", "Women"], n)},
               {"season": lambda r, n: r.choice(["Fall", "Summer"], n),
                "usage": lambda r, n: np.where(np.arange(n) < 3, None, r.choice(["Casual", "Sports"], n))})
    path, g = new_competition("shop", ws)
    comp = ws.competition("shop")
    assert [(t.name, t.task, t.submit) for t in comp.targets] == [("kind", "multiclass", True),
                                                                   ("gender", "binary", True)]
    assert comp.cv.kind == "multilabel-stratified" and comp.metric == "accuracy"
    assert g.auxiliary == [("season", "binary"), ("usage", "binary")]  # candidates, commented out
    assert 'name = "season"' in path.read_text() and 'name = "usage"' in path.read_text()
    # usage has 3 rows without a label: listed, and the note says they are left out of its loss
    assert any("missing labels" in n and "usage (3)" in n for n in g.notes)


def test_new_on_photos_with_a_number_target_guesses_a_regression_metric(ws):
    data = ws.root / "data" / "ages"
    _photo_set(data, {"age": lambda r, n: r.integers(1, 90, n).astype(float) + 0.5}, {})
    new_competition("ages", ws)
    comp = ws.competition("ages")
    assert comp.targets[0].task == "regression" and comp.metric in ("rmse", "rmsle") and comp.cv.kind == "kfold"


def test_new_refuses_photos_mixing_class_and_number_targets(ws):
    from kagglekit.errors import DataError

    data = ws.root / "data" / "mixed"
    _photo_set(data, {"age": lambda r, n: r.normal(40, 10, n), "kind": lambda r, n: r.choice(["a", "b", "c"], n)}, {})
    with pytest.raises(DataError, match="mixes class targets and number targets"):
        new_competition("mixed", ws)

"""The linear family (and, where they share a case, the neural one): its design is fitted on the
training fold alone, and hard columns (all missing, constant, a category seen only in test, a class
missing from a fold) neither break it nor leak."""

import numpy as np
import pandas as pd
import pytest

from kagglekit.data import load_data
from kagglekit.submissions import read_submission, validate_submission
from kagglekit.tabular.baseline import baseline
from kagglekit.tabular.linear import LinearDesign
from kagglekit.tabular.models import create_model

from .conftest import make_tabular


def _frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"price": rng.lognormal(3, 1, n), "z": rng.normal(size=n),
                         "month": rng.integers(1, 13, n), "cat": rng.choice([1, 2, 3], n, p=[0.6, 0.37, 0.03])})


def test_design_learns_from_the_training_fold_only():
    train = _frame()
    design = LinearDesign(categorical=("cat",), min_frequency=10).fit(train)
    names = list(design.transformer_.get_feature_names_out())
    blocks = {name: list(cols) for name, _, cols in design.transformer_.transformers_}
    assert "price" in blocks["log"] and "z" in blocks["num"]  # skewed: log1p; not skewed: as it is
    assert sum(n.startswith("month\x1f") for n in names) == 12  # few values: one-hot beside the number
    cat_levels = [n for n in names if n.startswith("cat\x1f")]
    assert len(cat_levels) == 3 and any("infrequent" in n for n in cat_levels)  # level 3 (~6 rows) pooled
    test = train.head(3).copy()
    test.loc[0, "cat"] = 9  # a level never seen in training
    test.loc[1, "price"] = 1e9  # far outside the fold's range: clipped to its maximum
    test.loc[2, "price"] = train["price"].max()
    Z = design.transform(test).toarray()
    price = names.index("price")
    assert Z[1, price] == pytest.approx(Z[2, price])
    assert np.isfinite(Z).all()


def test_regression_fitted_dense_finds_the_sparse_designs_elastic_net(monkeypatch):
    from sklearn.linear_model import ElasticNetCV

    from kagglekit.tabular import linear

    X = _frame(n=400, seed=2)
    noise = np.random.default_rng(3).normal(size=400)
    y = 2 * np.log1p(X["price"]).to_numpy() + (X["cat"] == 2) - 0.1 * X["month"] + noise
    real_fit, fits = ElasticNetCV.fit, {}
    for way, cells in (("dense", linear._DENSE_CELLS), ("sparse", -1)):
        seen: list = []
        monkeypatch.setattr(linear, "_DENSE_CELLS", cells)
        spy = lambda self, Z, t, _seen=seen: (_seen.append(Z), real_fit(self, Z, t))[1]  # noqa: E731
        monkeypatch.setattr(ElasticNetCV, "fit", spy)
        fits[way] = create_model("linear", task="regression", seed=0).fit(X, y, categorical=("cat",))
        assert isinstance(seen[0], np.ndarray) == (way == "dense")  # what the elastic net was given
    dense, sparse = fits["dense"], fits["sparse"]
    assert dense.estimator_.alpha_ == pytest.approx(sparse.estimator_.alpha_)
    assert np.allclose(dense.predict(X), sparse.predict(X), atol=1e-8)


def test_one_class_missing_from_a_fold_gets_probability_zero():
    X = _frame(seed=1)
    y = (X["z"] > 0).astype(int).to_numpy()  # classes 0 and 1 seen; class 2 exists elsewhere
    model = create_model("linear", task="classification", n_classes=3, seed=0).fit(X, y, categorical=("cat",))
    proba = model.predict(X.head(20))
    assert proba.shape == (20, 3) and np.allclose(proba[:, 2], 0) and np.allclose(proba.sum(1), 1)


@pytest.mark.parametrize("family", ["linear", "nn"])
def test_new_family_baseline_takes_hard_columns_and_writes_a_valid_submission(ws, family):
    if family == "nn":
        pytest.importorskip("torch")
    make_tabular(ws.root, n=300, n_test=80)
    data_dir = ws.root / "data" / "synth"
    train, test = pd.read_csv(data_dir / "train.csv"), pd.read_csv(data_dir / "test.csv")
    for df in (train, test):
        df["empty"] = np.nan  # all missing
        df["const"] = 7  # constant
    train["shop"] = np.where(train["x1"] > 0, "north", "south")
    test["shop"] = "east"  # seen only in test
    train.to_csv(data_dir / "train.csv", index=False)
    test.to_csv(data_dir / "test.csv", index=False)
    result = baseline("synth", models=(family,), workspace=ws)
    assert result.plan.dropped["empty"] == "all values missing" and result.plan.dropped["const"] == "a single value"
    assert result.best.model == family and result.best.cv > 0.8
    sub = read_submission(result.submission)
    assert validate_submission(load_data(ws.competition("synth"), ws), sub) == []


@pytest.mark.parametrize("family", ["linear", "nn"])
def test_new_family_regression_fits_in_the_metrics_space(ws, family):
    if family == "nn":
        pytest.importorskip("torch")
    make_tabular(ws.root, task="regression")  # RMSLE
    result = baseline("synth", models=(family,), workspace=ws, submit=False)
    data = load_data(ws.competition("synth"), ws)
    naive = np.sqrt(np.mean((np.log1p(data.train.y) - np.log1p(data.train.y).mean()) ** 2))
    assert result.best.cv < (0.3 if family == "linear" else 0.5) * naive  # 300 rows: the net is the weaker
    assert result.best.run.config["target_transform"] == "log1p"

"""Contracts every registered component keeps (scikit-learn's ``parametrize_with_checks`` idea):
each metric ranks a perfect prediction above a random one in its own direction; each tabular model
is keyword-only, stores its parameters untouched, learns a signal and predicts in kagglekit's
format; the CLI's choices are the library's."""

import inspect

import numpy as np
import pandas as pd
import pytest

from kagglekit.errors import SpecError
from kagglekit.metrics import METRICS, get_metric
from kagglekit.tabular.models import MODELS, create_model, list_models


def _case(metric):
    rng = np.random.default_rng(0)
    n = 300
    if metric.needs == "value":
        y = rng.gamma(2.0, 2.0, n)
        return y, y.copy(), rng.permutation(y)
    k = 5 if metric.name.startswith("map@") or metric.name in ("qwk", "f1_macro") else 2
    y = rng.integers(0, k, n)
    perfect = np.full((n, k), 0.02 / (k - 1))
    perfect[np.arange(n), y] = 0.98
    noise = rng.dirichlet(np.ones(k), n)
    return y, perfect, noise


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_metric_prefers_the_truth_in_its_own_direction(name):
    metric = get_metric(name)
    y, perfect, random_pred = _case(metric)
    good, bad = metric(y, perfect), metric(y, random_pred)
    assert np.isfinite(good) and np.isfinite(bad)
    assert metric.better(good, bad), (name, good, bad)
    assert metric.sort_key(good) < metric.sort_key(bad) < metric.sort_key(None)


def _table(task, n=240, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.integers(0, 3, n)})
    signal = 2 * X["a"] - X["b"]
    if task == "regression":
        return X, (signal + rng.normal(0, 0.1, n)).to_numpy(), 0
    k = 3 if task == "multiclass" else 2
    y = np.digitize(signal, np.quantile(signal, np.linspace(0, 1, k + 1)[1:-1]))
    return X, y, k


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_every_tabular_model_learns_and_predicts_in_kagglekits_format(name, task):
    cls = MODELS[name]
    params = inspect.signature(cls.__init__).parameters
    assert all(p.kind is p.KEYWORD_ONLY for n, p in params.items() if n != "self")  # scikit-learn style
    X, y, k = _table(task)
    tr, va = slice(0, 180), slice(180, None)
    model = create_model(name, task="regression" if task == "regression" else "classification", n_classes=k,
                         params={}, seed=0, n_jobs=1)
    assert model.params == {}  # __init__ only stores
    assert model.fit(X[tr], y[tr], X[va], y[va]) is model  # fit returns self
    assert len(model.feature_importances_) == X.shape[1] and model.best_iteration_ >= 1
    pred = model.predict(X[va])
    if task == "regression":
        assert pred.shape == (60,)
        assert np.corrcoef(pred, y[va])[0, 1] > 0.8
    else:
        assert pred.shape == (60, k) and np.allclose(pred.sum(1), 1)
        assert (pred.argmax(1) == y[va]).mean() > 1.5 / k  # well above chance
    with pytest.raises(SpecError, match="unknown parameter"):
        create_model(name, task="classification", params={"no_such_parameter": 1}).resolved_params()


def test_cli_choices_are_the_librarys():
    from kagglekit.blend import METHODS
    from kagglekit.cli._app import Device, Method
    from kagglekit.machine import DEVICES

    assert [m.value for m in Method] == list(METHODS)
    assert [m.value for m in Device] == list(DEVICES)




def test_catboost_is_asked_for_not_a_default_and_names_its_extra_when_missing(monkeypatch):
    import sys

    from kagglekit.tabular.models import default_models, missing_extra

    assert default_models() == ("rf", "lgbm", "linear", "nn")  # the 26-table evidence: catboost did not pay
    assert missing_extra("catboost") is None  # the dev extra installs it
    monkeypatch.setitem(sys.modules, "catboost", None)  # as if not installed: importing it fails
    assert missing_extra("catboost") == "pip install 'kagglekit[catboost]'"
    X, y, _ = _table("binary")
    with pytest.raises(SpecError, match=r"pip install 'kagglekit\[catboost\]'"):
        create_model("catboost", task="classification", n_classes=2).fit(X, y)

import numpy as np
import pytest
from sklearn import metrics as skm

from kagglekit.errors import SpecError
from kagglekit.metrics import binary_auc, get_metric, list_metrics, map_at_k


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def _proba(rng, n, c):
    p = rng.random((n, c))
    return p / p.sum(axis=1, keepdims=True)


def test_classification_metrics_match_sklearn(rng):
    for _ in range(5):
        y = rng.integers(0, 3, 200)
        p = _proba(rng, 200, 3)
        assert get_metric("accuracy")(y, p) == pytest.approx(skm.accuracy_score(y, p.argmax(1)))
        assert get_metric("logloss")(y, p) == pytest.approx(skm.log_loss(y, p, labels=[0, 1, 2]))
        assert get_metric("f1_macro")(y, p) == pytest.approx(skm.f1_score(y, p.argmax(1), average="macro"))
        assert get_metric("auc")(y, p) == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"))
        assert get_metric("qwk")(y, p) == pytest.approx(skm.cohen_kappa_score(y, p.argmax(1), weights="quadratic"))


def test_binary_auc_takes_positive_class_probability(rng):
    y = rng.integers(0, 2, 300)
    p1 = np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1)
    p = np.column_stack([1 - p1, p1])
    assert get_metric("auc")(y, p) == pytest.approx(skm.roc_auc_score(y, p1))
    assert get_metric("logloss")(y, p) == pytest.approx(skm.log_loss(y, p1))


@pytest.mark.parametrize("decimals", [None, 2, 0])
def test_rank_auc_equals_sklearn_with_and_without_ties(rng, decimals):
    """The rank formula kk uses for a 0/1 target (ties counted a half) against the trapezoids of
    scikit-learn's ROC curve: rounding to 0 decimals leaves mostly ties."""
    for n in (3, 40, 3000):
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        s = rng.normal(size=n) + y
        if decimals is not None:
            s = np.round(s, decimals)
        assert binary_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
        assert binary_auc(y.astype(bool), -s) == pytest.approx(skm.roc_auc_score(y, -s), abs=1e-12)


def test_rank_auc_leaves_the_edge_cases_to_sklearn():
    with pytest.warns(UserWarning, match="one class|Only one"):  # undefined: scikit-learn's nan and warning
        assert np.isnan(binary_auc(np.zeros(5), np.arange(5.0)))
    with pytest.raises(ValueError, match="NaN"):
        binary_auc(np.array([0, 1, 0]), np.array([0.1, np.nan, 0.3]))
    labels, s = np.array([2, 5, 5, 2]), np.array([0.1, 0.8, 0.7, 0.2])  # not 0/1: sklearn's positive class
    assert binary_auc(labels, s) == skm.roc_auc_score(labels, s) == 1.0


def test_regression_metrics_match_sklearn(rng):
    y = rng.gamma(2, 10, 500)
    p = y * rng.lognormal(0, 0.3, 500)
    assert get_metric("rmse")(y, p) == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert get_metric("rmsle")(y, p) == pytest.approx(np.sqrt(skm.mean_squared_log_error(y, p)))
    assert get_metric("mae")(y, p) == pytest.approx(skm.mean_absolute_error(y, p))
    assert get_metric("r2")(y, p) == pytest.approx(skm.r2_score(y, p))


def test_qwk_on_ordinal_regression_rounds_predictions():
    y = np.array([0, 1, 2, 3, 3])
    pred = np.array([0.2, 1.4, 1.6, 3.1, 2.9])
    assert get_metric("qwk")(y, pred) == pytest.approx(skm.cohen_kappa_score(y, [0, 1, 2, 3, 3], weights="quadratic"))


def test_map_at_k_hand_computed():
    y = np.array([0, 1, 2])
    p = np.array([[0.5, 0.3, 0.2],   # true class ranked 1st -> 1
                  [0.5, 0.3, 0.2],   # 2nd -> 1/2
                  [0.1, 0.2, 0.05]])  # 3rd -> 1/3
    assert map_at_k(y, p, 3) == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert map_at_k(y, p, 1) == pytest.approx(1 / 3)
    assert get_metric("map@3")(y, p) == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert get_metric("map@2")(y, p) == pytest.approx((1 + 1 / 2) / 3)


def test_directions_and_inputs():
    assert get_metric("auc").greater_is_better and get_metric("auc").needs == "proba"
    assert not get_metric("rmsle").greater_is_better and get_metric("rmsle").needs == "value"
    assert get_metric("accuracy").needs == "label"
    m = get_metric("rmse")
    assert m.better(0.1, 0.2) and not m.better(0.2, 0.1)
    assert sorted([0.3, None, 0.1], key=m.sort_key)[:2] == [0.1, 0.3]
    for name in ("accuracy", "auc", "logloss", "rmse", "rmsle", "mae", "f1_macro", "qwk", "map@3"):
        assert name in list_metrics()


def test_unknown_metric_suggests():
    with pytest.raises(SpecError, match="did you mean 'logloss'"):
        get_metric("log_loss")


def test_per_class_precision_and_recall():
    from kagglekit.metrics import per_class

    y = np.array([0, 0, 1, 1, 2])
    proba = np.eye(3)[[0, 1, 1, 1, 0]]  # one 0 taken for a 1, the 2 taken for a 0
    rows = {r["class"]: r for r in per_class(y, proba, ["a", "b", "c"])}
    assert rows["a"]["precision"] == 0.5 and rows["a"]["recall"] == 0.5
    assert rows["b"]["precision"] == pytest.approx(2 / 3) and rows["b"]["recall"] == 1.0
    assert rows["c"]["recall"] == 0.0 and np.isnan(rows["c"]["precision"]) and rows["c"]["n"] == 1


def test_calibration_tells_over_confidence():
    from kagglekit.metrics import calibration

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 1000)
    right = rng.random(1000) < 0.7  # 70% right...
    pred = np.where(right, y, 1 - y)
    proba = np.where(pred[:, None] == np.arange(2), 0.99, 0.01)  # ...at 99% confidence
    cal = calibration(y, proba)
    assert cal["confidence"] == pytest.approx(0.99) and cal["accuracy"] == pytest.approx(right.mean())
    assert cal["ece"] == pytest.approx(0.99 - right.mean(), abs=1e-9)
    honest = calibration(y, np.where(pred[:, None] == np.arange(2), right.mean(), 1 - right.mean()))
    assert honest["ece"] < 1e-9

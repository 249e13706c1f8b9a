"""The linear family (``--model linear``): regularised linear models on a design fitted inside each
training fold, the model that top notebooks of small Kaggle tables blend with gradient boosting.

The design (:class:`LinearDesign`, scikit-learn's ``ColumnTransformer``) turns the fold's
preprocessed frame (categorical codes, median-filled numerics with ``<col>_na`` indicators, date
parts as numbers) into a sparse matrix:

- categorical columns one-hot, levels rarer than ``min_frequency`` rows pooled into one, levels unseen
  in the fold mapped to the missing level by the preprocessor;
- skewed non-negative numerics (``|skew| > skew``) through ``log1p``; every numeric clipped to the
  fold's range (a linear model must not extrapolate from one outlying test value) and standardised;
- numerics with few distinct values (date parts, counts, ordinal codes) one-hot as well, so a month
  or a weekday gets its own level beside its trend.

The penalty's strength is chosen by an inner cross-validation on the training fold only: an elastic
net over ``l1_ratio`` for regression (fitted in the metric's space, log1p for RMSLE, like the trees),
L2-penalised logistic regression (binary or multinomial) scored by log loss for classification.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._base import TabularModel, full_proba, register_model

_SEP = "\x1f"  # one-hot feature names: <column><_SEP><level>, so each maps back to its column


def _combine(feature: str, level: Any) -> str:
    return f"{feature}{_SEP}{level}"


class _Clip:
    """Clip each column to the range seen in fit (a scikit-learn transformer)."""

    def fit(self, X: Any, y: Any = None) -> _Clip:
        a = np.asarray(X, dtype=float)
        self.lo_, self.hi_ = np.nanmin(a, axis=0), np.nanmax(a, axis=0)
        return self

    def transform(self, X: Any) -> np.ndarray:
        return np.clip(np.asarray(X, dtype=float), self.lo_, self.hi_)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(input_features, dtype=object)


class LinearDesign:
    """The linear model's design matrix, fitted on a training fold (see the module docstring)."""

    def __init__(self, *, categorical: tuple[str, ...] = (), min_frequency: int = 10, skew: float = 0.75,
                 onehot_numeric_max: int = 24):
        self.categorical = categorical
        self.min_frequency = min_frequency
        self.skew = skew
        self.onehot_numeric_max = onehot_numeric_max

    def fit(self, X: pd.DataFrame) -> LinearDesign:
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

        cats = [c for c in X.columns if c in self.categorical]
        nums = [c for c in X.columns if c not in self.categorical and X[c].nunique() > 1]
        skewed = [c for c in nums if X[c].min() >= 0 and X[c].nunique() > 2 and abs(float(X[c].skew())) > self.skew]
        plain = [c for c in nums if c not in skewed]
        few = [c for c in nums if 2 < X[c].nunique() <= self.onehot_numeric_max]
        onehot = dict(handle_unknown="infrequent_if_exist", min_frequency=self.min_frequency,
                      feature_name_combiner=_combine, dtype=np.float32)
        parts: list[tuple[str, Any, list[str]]] = [
            ("log", make_pipeline(FunctionTransformer(np.log1p, feature_names_out="one-to-one"), _Clip(),
                                  StandardScaler()), skewed),
            ("num", make_pipeline(_Clip(), StandardScaler()), plain),
            ("cat", OneHotEncoder(**onehot), cats + few),
        ]
        self.transformer_ = ColumnTransformer([p for p in parts if p[2]], sparse_threshold=1.0,
                                              verbose_feature_names_out=False)
        self.transformer_.fit(X.astype(float))
        names = self.transformer_.get_feature_names_out()
        self.sources_ = np.array([str(n).split(_SEP)[0] for n in names])
        return self

    def transform(self, X: pd.DataFrame) -> Any:
        from scipy import sparse

        return sparse.csr_matrix(self.transformer_.transform(X.astype(float)))


_DENSE_CELLS = 2**24  # 128 MiB of float64


def _dense_enough(Z: Any) -> bool:
    """Whether the design fits dense in ``_DENSE_CELLS``: scikit-learn's coordinate descent on a dense
    matrix finds the same elastic net as on the sparse one in a tenth to a thirtieth of the time
    (``bench/linear_dense.py``)."""
    return Z.shape[0] * Z.shape[1] <= _DENSE_CELLS


@register_model("linear")
class LinearModel(TabularModel):
    """Regularised linear models (scikit-learn) on :class:`LinearDesign`: ``ElasticNetCV`` for
    regression, ``LogisticRegressionCV`` for classification, the penalty chosen by ``inner_folds``-fold
    cross-validation of the training fold, on one thread (the inner CV's paths on two threads took bike
    sharing from 18.9 to 10.6 s a fold but diamonds from 36.6 to 51.8 s and CPS1988 from 6.2 to 9.0 s:
    ``bench/tabular_suite.py``, "kk fast" against "kk lean"). Parameters: ``l1_ratio`` (regression; a list is searched),
    ``alphas`` / ``Cs`` (how many strengths are tried), ``min_frequency``, ``skew``,
    ``onehot_numeric_max`` (the design), ``max_iter``."""

    fold_cost = 1.2  # seconds a fold (TabularModel.fold_cost)
    defaults = {"l1_ratio": [0.1, 0.5, 0.9, 1.0], "alphas": 30, "Cs": 12, "inner_folds": 3, "max_iter": 2000,
                "min_frequency": 10, "skew": 0.75, "onehot_numeric_max": 24}

    def fit(self, X: pd.DataFrame, y: np.ndarray, X_valid: pd.DataFrame | None = None,
            y_valid: np.ndarray | None = None, categorical: tuple[str, ...] = ()) -> LinearModel:
        from sklearn.linear_model import ElasticNetCV, LogisticRegressionCV
        from sklearn.model_selection import KFold, StratifiedKFold

        p = self.resolved_params()
        self.design_ = LinearDesign(categorical=tuple(categorical), min_frequency=int(p["min_frequency"]),
                                    skew=float(p["skew"]), onehot_numeric_max=int(p["onehot_numeric_max"])).fit(X)
        Z = self.design_.transform(X)
        k = int(p["inner_folds"])
        if self.task == "regression":
            est: Any = ElasticNetCV(l1_ratio=p["l1_ratio"], alphas=int(p["alphas"]), max_iter=int(p["max_iter"]),
                                    cv=KFold(k, shuffle=True, random_state=self.seed), random_state=self.seed,
                                    selection="random", n_jobs=1)
        else:
            counts = np.bincount(np.asarray(y, dtype=int))
            smallest = int(counts[counts > 0].min())  # the inner folds cannot outnumber the rarest class
            est = LogisticRegressionCV(Cs=int(p["Cs"]), l1_ratios=(0.0,), scoring="neg_log_loss",
                                       cv=StratifiedKFold(max(2, min(k, smallest)), shuffle=True,
                                                          random_state=self.seed),
                                       max_iter=int(p["max_iter"]), use_legacy_attributes=False, n_jobs=1)
        est.fit(Z.toarray() if self.task == "regression" and _dense_enough(Z) else Z, y)
        self.estimator_ = est
        self.best_iteration_ = max(1, int(np.max(est.n_iter_)))  # the solver's iterations
        self.feature_importances_ = self._importance(Z, X.columns)
        return self

    def _importance(self, Z: Any, columns: pd.Index) -> np.ndarray:
        """|coefficient| x the feature's spread, summed over each input column's features."""
        coef = np.abs(np.atleast_2d(self.estimator_.coef_)).sum(axis=0)
        mean = np.asarray(Z.mean(axis=0)).ravel()
        std = np.sqrt(np.maximum(np.asarray(Z.multiply(Z).mean(axis=0)).ravel() - mean**2, 0))
        per = pd.Series(coef * std).groupby(self.design_.sources_).sum()
        return per.reindex(columns, fill_value=0.0).to_numpy()

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        Z = self.design_.transform(X)
        if self.task == "regression":
            return np.asarray(self.estimator_.predict(Z))
        return full_proba(self.estimator_.predict_proba(Z), self.estimator_.classes_, self.n_classes)

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {
            "min_frequency": trial.suggest_int("min_frequency", 1, 50, log=True),
            "skew": trial.suggest_float("skew", 0.5, 3.0),
            "onehot_numeric_max": trial.suggest_int("onehot_numeric_max", 2, 64, log=True),
        }

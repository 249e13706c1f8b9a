"""scikit-learn's random forest (``--model rf``)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from ._base import TabularModel, default_n_jobs, full_proba, register_model


@register_model("rf")
class RandomForestModel(TabularModel):
    """scikit-learn's random forest. On large tables each tree sees at most ``max_rows`` rows
    (``max_samples``), which bounds its time: a forest on 100k rows costs what one on 20k does."""

    fold_cost = 2.7  # seconds a fold (TabularModel.fold_cost)
    defaults = {"n_estimators": 150, "min_samples_leaf": 3, "max_features": "sqrt", "max_depth": None,
                "max_rows": 20_000}

    def defaults_for(self, task: str, n_rows: int | None = None) -> dict[str, Any]:
        d = dict(self.defaults)
        if task == "regression":
            d["max_features"] = 0.5
            d["min_samples_leaf"] = 2
        return d

    def fit(self, X: pd.DataFrame, y: np.ndarray, X_valid: pd.DataFrame | None = None,
            y_valid: np.ndarray | None = None, categorical: tuple[str, ...] = ()) -> RandomForestModel:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        params = self.resolved_params()
        max_rows = params.pop("max_rows")
        n_estimators = int(params.pop("n_estimators"))
        max_samples = min(1.0, max_rows / len(X)) if max_rows else None
        cls = RandomForestRegressor if self.task == "regression" else RandomForestClassifier
        est = cls(n_estimators=0, warm_start=True, random_state=self.seed, n_jobs=self.n_jobs or default_n_jobs(),
                  max_samples=max_samples if max_samples and max_samples < 1.0 else None, **params)
        # under a time limit grow in chunks, so the limit can stop the forest with what it has
        start, chunk = time.perf_counter(), (50 if self.time_limit else n_estimators)
        while est.n_estimators < n_estimators:
            est.n_estimators = min(n_estimators, est.n_estimators + chunk)
            est.fit(X, y)
            if self.time_limit and time.perf_counter() - start > self.time_limit:
                break
        self.estimator_ = est
        self.feature_importances_ = est.feature_importances_
        self.best_iteration_ = est.n_estimators  # trees grown: fewer than asked when the time limit stopped it
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if self.task == "regression":
            return self.estimator_.predict(X)
        return full_proba(self.estimator_.predict_proba(X), self.estimator_.classes_, self.n_classes)

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {
            "n_estimators": trial.suggest_int("n_estimators", 100, 600, step=100),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
            "max_features": trial.suggest_float("max_features", 0.2, 1.0),
            "max_depth": trial.suggest_categorical("max_depth", [None, 6, 10, 16]),
        }

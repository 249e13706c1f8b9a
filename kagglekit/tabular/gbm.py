"""LightGBM, the tabular baseline's gradient-boosting family (``--model lgbm``)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from ._base import TabularModel, auto_n_jobs, full_proba, is_large, register_model


@register_model("lgbm")
class LightGBMModel(TabularModel):
    """LightGBM through its scikit-learn API, early-stopped on the validation fold.

    On a large table (``is_large``: 100,000 rows or more) the learning rate is 0.1 with at most 1,000
    rounds and early stopping after 50: at 0.03 and 3,000 rounds a fold of a 500,000-row table took
    79 s and never stopped early; at 0.1 it took 25 s for AUC 0.6364 against 0.6369
    (AER/Fertility resampled to 500,000 rows, fold 0, 2 cores; the whole baseline's times at 100k to 1M
    rows are in ``bench/playground_scale.py``). Below that, one set for every size: a small-table set
    (num_leaves 15, min_child_samples 10, reg_lambda 5, colsample_bytree 0.5, with CatBoost depth 4
    and forest leaves of 5) was measured on the tabular suite's four tables under 1,000 rows: no gain
    beyond noise on any, and Titanic fell 0.0056 +/- 0.0031. Early stopping and the greedy ensemble,
    which weighs the families per table, already adapt to a table's size."""

    fold_cost = 1.4  # seconds a fold (TabularModel.fold_cost)
    defaults = {
        "n_estimators": 3000, "learning_rate": 0.03, "num_leaves": 31, "min_child_samples": 20,
        "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 1.0,
        "reg_alpha": 0.0, "max_depth": -1, "min_split_gain": 0.0, "early_stopping_rounds": 150,
    }
    large = {"learning_rate": 0.1, "n_estimators": 1000, "early_stopping_rounds": 50}

    def defaults_for(self, task: str, n_rows: int | None = None) -> dict[str, Any]:
        return {**self.defaults, **(self.large if is_large(n_rows) else {})}

    def fit(self, X: pd.DataFrame, y: np.ndarray, X_valid: pd.DataFrame | None = None,
            y_valid: np.ndarray | None = None, categorical: tuple[str, ...] = ()) -> LightGBMModel:
        import lightgbm as lgb

        global _HAS_EVAL_X
        if _HAS_EVAL_X is None:
            _HAS_EVAL_X = _lgbm_has_eval_x()
        params = self.resolved_params()
        stop_rounds = int(params.pop("early_stopping_rounds"))
        common = dict(random_state=self.seed, n_jobs=auto_n_jobs(X, self.n_jobs), verbose=-1,
                      deterministic=True, force_row_wise=True, **params)
        est: Any = lgb.LGBMRegressor(**common) if self.task == "regression" else lgb.LGBMClassifier(**common)
        callbacks = []
        fit_kw: dict[str, Any] = {"categorical_feature": [c for c in categorical if c in X.columns] or "auto"}
        if X_valid is not None and stop_rounds > 0:
            if _HAS_EVAL_X:  # LightGBM >= 4.7 deprecates eval_set
                fit_kw.update(eval_X=(X_valid,), eval_y=(y_valid,))
            else:
                fit_kw["eval_set"] = [(X_valid, y_valid)]
            callbacks.append(lgb.early_stopping(stop_rounds, verbose=False))
        if self.time_limit:
            callbacks.append(_time_limit_callback(self.time_limit))
        est.fit(X, y, callbacks=callbacks, **fit_kw)
        self.estimator_ = est
        self.best_iteration_ = est.best_iteration_ or est.n_estimators
        self.feature_importances_ = est.booster_.feature_importance("gain")
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        est = self.estimator_
        if self.task == "regression":
            return np.asarray(est.predict(X, num_iteration=self.best_iteration_))
        proba = est.predict_proba(X, num_iteration=self.best_iteration_)
        return full_proba(proba, est.classes_, self.n_classes)

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 4, 128, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30, log=True),
            "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10, log=True),
        }


def _lgbm_has_eval_x() -> bool:
    import inspect

    import lightgbm as lgb

    return "eval_X" in inspect.signature(lgb.LGBMModel.fit).parameters


_HAS_EVAL_X: bool | None = None


def _time_limit_callback(seconds: float):
    import lightgbm as lgb

    start = time.perf_counter()

    def callback(env: Any) -> None:
        if time.perf_counter() - start > seconds:
            best = env.evaluation_result_list or []
            raise lgb.callback.EarlyStopException(env.iteration, best)

    callback.order = 40  # type: ignore[attr-defined]  # lightgbm orders callbacks by this attribute
    return callback

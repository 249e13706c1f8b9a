"""Tabular models behind a small registry: ``create_model("lgbm", task=..., ...)``.

A model is an estimator with a keyword-only ``__init__`` that only stores, ``fit(X, y, X_valid,
y_valid)`` returning self, ``predict(X)`` returning an ``(n, C)`` probability matrix for
classification or an ``(n,)`` array for regression, and ``feature_importances_``. Register a new
one with ``@register_model("name")``. Each model also declares the search space ``kk tune`` uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ..errors import SpecError, did_you_mean, one_of

MODELS: dict[str, type[TabularModel]] = {}


def register_model(name: str) -> Callable[[type[TabularModel]], type[TabularModel]]:
    def wrap(cls: type[TabularModel]) -> type[TabularModel]:
        cls.name = name
        MODELS[name] = cls
        return cls

    return wrap


def list_models() -> list[str]:
    """The registered tabular model families (``kk baseline --model``).

    >>> {"rf", "lgbm"} <= set(list_models())
    True
    """
    return sorted(MODELS)


def default_models() -> tuple[str, ...]:
    """What ``kk baseline`` runs: random forest and LightGBM, and CatBoost where its extra is installed."""
    return ("rf", "lgbm", *(("catboost",) if catboost_available() else ()))


def create_model(name: str, **kwargs: Any):
    if name not in MODELS:
        raise SpecError(f"unknown model {name!r}: expected {one_of(list_models())}{did_you_mean(name, MODELS)}")
    return MODELS[name](**kwargs)


def default_n_jobs() -> int:
    """Every core this process may use (``kagglekit.machine.cpu_cores``)."""
    from ..machine import cpu_cores

    return cpu_cores()


def auto_n_jobs(X: pd.DataFrame, n_jobs: int | None) -> int:
    """Threads for one fit: all cores on large tables, one on small ones, where threads cost more
    in start-up and, when another process shares the cores, in OpenMP spin-waiting than they save
    (measured: 3.7x slower with 2 threads beside a busy process, 1.4x with 1).
    scikit-learn's forests use joblib threads, which do not spin, and keep all cores."""
    if n_jobs:
        return n_jobs
    return default_n_jobs() if X.shape[0] * X.shape[1] >= 1_000_000 else 1


def _full_proba(proba: np.ndarray, seen: np.ndarray, n_classes: int) -> np.ndarray:
    """Expand probabilities over the classes a fold saw to all ``n_classes`` columns."""
    if proba.shape[1] == n_classes:
        return proba
    out = np.zeros((len(proba), n_classes))
    out[:, seen.astype(int)] = proba
    return out


class TabularModel:
    """Shared plumbing: parameter merging and validation."""

    name = "base"
    defaults: dict[str, Any] = {}

    def __init__(self, *, task: str, n_classes: int = 0, params: dict[str, Any] | None = None, seed: int = 42,
                 n_jobs: int | None = None, time_limit: float | None = None):
        self.task = task
        self.n_classes = n_classes
        self.params = params or {}
        self.seed = seed
        self.n_jobs = n_jobs
        self.time_limit = time_limit

    def resolved_params(self) -> dict[str, Any]:
        unknown = [k for k in self.params if k not in self.defaults and k not in self.extra_params]
        if unknown:
            k = unknown[0]
            raise SpecError(f"unknown parameter {self.name}.{k}: known parameters are "
                            f"{one_of(sorted(self.defaults) + sorted(self.extra_params))}"
                            f"{did_you_mean(k, list(self.defaults) + list(self.extra_params))}")
        return {**self.defaults_for(self.task), **self.params}

    extra_params: tuple[str, ...] = ()

    def defaults_for(self, task: str) -> dict[str, Any]:
        return dict(self.defaults)

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:  # pragma: no cover - overridden
        return {}


@register_model("lgbm")
class LightGBMModel(TabularModel):
    """LightGBM through its scikit-learn API, early-stopped on the validation fold.

    The same defaults at every table size. A small-table set (num_leaves 15, min_child_samples 10,
    reg_lambda 5, colsample_bytree 0.5, with CatBoost depth 4 and forest leaves of 5) was measured on
    the tabular suite's four tables under 1,000 rows: no gain beyond noise on any, and Titanic fell
    0.0056 +/- 0.0031. Early stopping and the greedy ensemble, which weighs the families per table,
    already adapt to a table's size."""

    defaults = {
        "n_estimators": 3000, "learning_rate": 0.03, "num_leaves": 31, "min_child_samples": 20,
        "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 1.0,
        "reg_alpha": 0.0, "max_depth": -1, "min_split_gain": 0.0, "early_stopping_rounds": 150,
    }

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
        return _full_proba(proba, est.classes_, self.n_classes)

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


@register_model("rf")
class RandomForestModel(TabularModel):
    """scikit-learn's random forest. On large tables each tree sees at most ``max_rows`` rows
    (``max_samples``), which bounds its time: a forest on 100k rows costs what one on 20k does."""

    defaults = {"n_estimators": 150, "min_samples_leaf": 3, "max_features": "sqrt", "max_depth": None,
                "max_rows": 20_000}

    def defaults_for(self, task: str) -> dict[str, Any]:
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
        return _full_proba(self.estimator_.predict_proba(X), self.estimator_.classes_, self.n_classes)

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {
            "n_estimators": trial.suggest_int("n_estimators", 100, 600, step=100),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
            "max_features": trial.suggest_float("max_features", 0.2, 1.0),
            "max_depth": trial.suggest_categorical("max_depth", [None, 6, 10, 16]),
        }


@register_model("catboost")
class CatBoostModel(TabularModel):
    """CatBoost (the ``catboost`` extra), early-stopped on the validation fold. Categorical columns
    go in as CatBoost's own categoricals (ordered target statistics), not as codes. Plain boosting
    (CatBoost picks Ordered on small tables: 3-4x slower here for the same CV on titanic and
    Spaceship Titanic); ``max_ctr_complexity`` 1 would be 1.7x faster but cost bike sharing 0.0018
    RMSLE, so CatBoost's 4 stays."""

    defaults = {"iterations": 1000, "learning_rate": 0.08, "depth": 6, "l2_leaf_reg": 3.0,
                "random_strength": 1.0, "bagging_temperature": 1.0, "border_count": 254,
                "boosting_type": "Plain", "max_ctr_complexity": 4, "early_stopping_rounds": 100}

    def fit(self, X: pd.DataFrame, y: np.ndarray, X_valid: pd.DataFrame | None = None,
            y_valid: np.ndarray | None = None, categorical: tuple[str, ...] = ()) -> CatBoostModel:
        catboost = _import_catboost()
        params = self.resolved_params()
        stop_rounds = int(params.pop("early_stopping_rounds"))
        loss = {"regression": "RMSE"}.get(self.task, "MultiClass" if self.n_classes > 2 else "Logloss")
        cls = catboost.CatBoostRegressor if self.task == "regression" else catboost.CatBoostClassifier
        # every core: on Spaceship Titanic's 7k rows, 5 folds took 17 s with 2 threads, 23 s with 1
        est = cls(loss_function=loss, random_seed=self.seed, thread_count=self.n_jobs or default_n_jobs(),
                  verbose=False, allow_writing_files=False, **params)
        cats = [c for c in categorical if c in X.columns]
        fit_kw: dict[str, Any] = {"cat_features": cats}
        if X_valid is not None and stop_rounds > 0:
            fit_kw.update(eval_set=(X_valid, y_valid), early_stopping_rounds=stop_rounds, use_best_model=True)
        if self.time_limit:
            fit_kw["callbacks"] = [_CatBoostTimeLimit(self.time_limit)]
        est.fit(X, y, **fit_kw)
        self.estimator_ = est
        self.best_iteration_ = int(est.get_best_iteration() or est.tree_count_) + 1
        self.feature_importances_ = np.asarray(est.get_feature_importance())
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        est = self.estimator_
        if self.task == "regression":
            return np.asarray(est.predict(X))
        proba = est.predict_proba(X)
        return _full_proba(proba, np.asarray(est.classes_), self.n_classes)

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "depth": trial.suggest_int("depth", 3, 9),
            "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 0.1, 30, log=True),
            "random_strength": trial.suggest_float("random_strength", 0.1, 10, log=True),
            "bagging_temperature": trial.suggest_float("bagging_temperature", 0.0, 3.0),
        }


def _import_catboost() -> Any:
    try:
        import catboost
    except ImportError as e:
        raise SpecError("model 'catboost' needs the catboost package: pip install 'kagglekit[catboost]' "
                        "(or leave catboost out of the models)") from e
    return catboost


def catboost_available() -> bool:
    """Whether the optional CatBoost family can run here (``kk baseline`` uses it when it can)."""
    import importlib.util

    return importlib.util.find_spec("catboost") is not None


def missing_extra(name: str) -> str | None:
    """The install line for model ``name`` when it is an optional family not installed here, else None."""
    if name == "catboost" and not catboost_available():
        return "pip install 'kagglekit[catboost]'"
    return None


class _CatBoostTimeLimit:
    """Stops boosting once the fit has run ``seconds``: CatBoost calls ``after_iteration`` each round."""

    def __init__(self, seconds: float):
        self.seconds, self.start = seconds, time.perf_counter()

    def after_iteration(self, info: Any) -> bool:
        return time.perf_counter() - self.start <= self.seconds

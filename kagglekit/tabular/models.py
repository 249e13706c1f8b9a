"""Tabular models behind a small registry: ``create_model("lgbm", task=..., ...)``.

A model is an estimator with a keyword-only ``__init__`` that only stores, ``fit(X, y, X_valid,
y_valid)`` returning self, ``predict(X)`` returning an ``(n, C)`` probability matrix for
classification or an ``(n,)`` array for regression, and ``feature_importances_``. Register a new
one with ``@register_model("name")``. Each model also declares the search space ``kk tune`` uses.

Each family is a module of its own: :mod:`.forest` (rf), :mod:`.gbm` (lgbm), :mod:`.catboosting`
(catboost, optional), :mod:`.linear` (linear), :mod:`.nn` (nn, needs torch). Adding one is a new
module and its import here.
"""

from __future__ import annotations

from typing import Any

from ..errors import SpecError, did_you_mean, one_of
from . import catboosting, forest, gbm, linear, nn  # noqa: F401  (each registers its family)
from ._base import MODELS, TabularModel, auto_n_jobs, default_n_jobs, is_large, register_model
from .catboosting import catboost_available

__all__ = ["MODELS", "TabularModel", "auto_n_jobs", "create_model", "default_models", "default_n_jobs",
           "list_models", "missing_extra", "register_model"]


def list_models() -> list[str]:
    """The registered tabular model families (``kk baseline --model``).

    >>> {"rf", "lgbm"} <= set(list_models())
    True
    """
    return sorted(MODELS)


def default_models(n_rows: int | None = None, *, installed: bool = True) -> tuple[str, ...]:
    """What ``kk baseline`` runs on a table of ``n_rows`` training rows: random forest, LightGBM,
    the linear family, and the neural family where torch is installed and the table is not large
    (``_base.is_large``); the greedy ensemble blends their out-of-fold predictions. CatBoost runs
    when asked (``--model ...,catboost``) and in the ``tabular`` recipe, not by default.
    ``installed=False``: the families for this table whether or not torch is installed here.

    Evidence (``bench/tabular_suite.py``, ``bench/results/tabular_suite.jsonl.gz``, 2 cores):

    - linear (``--label "kk +linear"``, the outer 5 folds of 6 real tables, 3 of 20 more): the
      submitted blend gained beyond noise on 4 of 26 tables (attrition AUC +0.049, Carseats RMSE
      -0.24, credit_data, Default), within noise on the rest (breast cancer +0.0070 +/- 0.0058
      accuracy, diabetes, wine) and lost on none; 2 s on Spaceship Titanic, 28 s on bike sharing
      (1.1 s since its elastic net is fitted dense, ``bench/linear_dense.py``).
    - nn (``--label "kk +nn"``, the first 2 outer folds of all 26 tables, the blend against the same
      runs blended without it): gains on 4 (car_prices RMSE 2168 against 2280, Salaries, Boston,
      credit_data), 22 within noise, no loss; the mean normalised score (0 = the forest alone, 1 =
      the best of the variants on the table) 0.879 against 0.821 without it; 4 s on Titanic, 11 s
      on Spaceship Titanic, 44 s on diamonds (5 folds). Left out at 100,000 rows and more: 36 s a
      fold at 500,000 rows for AUC 0.623 where LightGBM reached 0.636, and no table that large in
      the suite to say it pays (``--model ...,nn`` still runs it).
    - catboost (``--label "kk timed"``, the first 2 outer folds of all 26 tables, each family's fit
      time and the blend without it): the blend without CatBoost had the mean normalised score 0.786
      against 0.782 with it (gains of 1-2.5% on bike sharing, diamonds, Sacramento and concrete, a
      loss of 4% on Boston), for 7.0 s a fold of the 33.4 s the defaults took (52 s on diamonds, 40 s
      on hpc_data). The forest stays: without it 0.754, for 3.0 s a fold. The defaults without
      CatBoost, run again (``--label "kk lean"``): 0.851 against 0.849 with it; behind it beyond
      noise on 5 tables (bike sharing RMSLE 0.2916 vs 0.2877, diamonds), ahead on 3 (Boston).

    >>> "nn" in default_models(891) and "nn" not in default_models(500_000)
    True
    """
    with_nn = not is_large(n_rows) and (nn.torch_available() or not installed)
    return ("rf", "lgbm", "linear", *(("nn",) if with_nn else ()))


def create_model(name: str, **kwargs: Any):
    if name not in MODELS:
        raise SpecError(f"unknown model {name!r}: expected {one_of(list_models())}{did_you_mean(name, MODELS)}")
    return MODELS[name](**kwargs)


def missing_extra(name: str) -> str | None:
    """The install line for model ``name`` when it is an optional family not installed here, else None."""
    if name == "catboost" and not catboost_available():
        return "pip install 'kagglekit[catboost]'"
    if name == "nn" and not nn.torch_available():
        return "pip install torch"
    return None

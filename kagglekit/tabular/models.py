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
from ._base import MODELS, TabularModel, auto_n_jobs, default_n_jobs, register_model
from .catboosting import catboost_available

__all__ = ["MODELS", "TabularModel", "auto_n_jobs", "create_model", "default_models", "default_n_jobs",
           "list_models", "missing_extra", "register_model"]


def list_models() -> list[str]:
    """The registered tabular model families (``kk baseline --model``).

    >>> {"rf", "lgbm"} <= set(list_models())
    True
    """
    return sorted(MODELS)


def default_models() -> tuple[str, ...]:
    """What ``kk baseline`` runs: random forest, LightGBM, CatBoost where its extra is installed, and
    the linear family, whose out-of-fold predictions the greedy ensemble blends with the trees'.

    Evidence for the linear family (``bench/tabular_suite.py --label "kk +linear"``, the same outer
    5 folds of 6 real tables, ``bench/results/tabular_suite.jsonl``): the submitted blend gained on
    breast cancer (accuracy +0.0070 +/- 0.0058), diabetes (RMSE -1.05 +/- 0.66) and wine (+0.0057
    +/- 0.0057) and was unchanged on Titanic, Spaceship Titanic and bike sharing, where the blend gave
    it no weight; it costs 2 s on Spaceship Titanic and 28 s on bike sharing (5 folds, 2 cores)."""
    return ("rf", "lgbm", *(("catboost",) if catboost_available() else ()), "linear")


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

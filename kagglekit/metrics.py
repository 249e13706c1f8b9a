"""Metrics registry.

Each metric knows its direction and what it takes: class probabilities (``"proba"``), class labels
(``"label"``) or values (``"value"``, regression). Predictions are passed in kagglekit's one format
and converted here: for a classification target ``y_true`` holds class indices ``0..C-1`` and
``pred`` an ``(n, C)`` probability matrix; for regression both are 1-D arrays.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .errors import SpecError, did_you_mean, one_of


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    greater_is_better: bool
    needs: str  # "proba" | "label" | "value"

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        return "maximize" if self.greater_is_better else "minimize"

    def __call__(self, y_true: np.ndarray, pred: np.ndarray) -> float:
        """Score predictions in kagglekit's format (see module docstring)."""
        y_true = np.asarray(y_true)
        pred = np.asarray(pred, dtype=float)
        if pred.ndim == 2:  # classification: probability matrix
            if self.needs == "label":
                pred = pred.argmax(axis=1)
            elif self.needs == "proba" and pred.shape[1] == 2 and self.name != "logloss":
                pred = pred[:, 1]
        elif self.needs == "label" and y_true.dtype.kind in "iu":  # ordinal regression, e.g. qwk
            pred = np.rint(pred).astype(int)
        return float(self.fn(y_true, pred))

    def better(self, a: float, b: float) -> bool:
        """True when score ``a`` is strictly better than ``b``."""
        return a > b if self.greater_is_better else a < b

    def sort_key(self, score: float | None) -> float:
        """Key that sorts best first (missing scores last)."""
        if score is None or np.isnan(score):
            return np.inf
        return -score if self.greater_is_better else score


METRICS: dict[str, Metric] = {}


def register_metric(name: str, *, greater_is_better: bool, needs: str):
    """Decorator adding a metric function ``fn(y_true, pred) -> float`` to the registry."""

    def wrap(fn: Callable[[np.ndarray, np.ndarray], float]):
        METRICS[name] = Metric(name, fn, greater_is_better, needs)
        return fn

    return wrap


def get_metric(name: str) -> Metric:
    """Look a metric up by name (``map@k`` for any k).

    Examples
    --------
    >>> rmse = get_metric("rmse")
    >>> rmse.greater_is_better, rmse.fn([1.0, 2.0], [1.0, 4.0])
    (False, 1.4142135623730951)
    >>> get_metric("map@5").needs
    'proba'
    """
    if name in METRICS:
        return METRICS[name]
    m = re.fullmatch(r"map@(\d+)", name)
    if m:
        k = int(m.group(1))
        return Metric(name, lambda y, p: map_at_k(y, p, k), True, "proba")
    raise SpecError(f"unknown metric {name!r}: expected {one_of(sorted(METRICS))}{did_you_mean(name, METRICS)}")


def list_metrics() -> list[str]:
    """The registered metrics' names (a spec's ``metric`` also takes ``map@k`` for any k).

    >>> {"accuracy", "auc", "rmsle", "qwk"} <= set(list_metrics())
    True
    """
    return sorted(METRICS)


@register_metric("accuracy", greater_is_better=True, needs="label")
def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def binary_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of a 0/1 target: the Mann-Whitney statistic over average ranks (ties count a half).
    Equal to scikit-learn's ``roc_auc_score`` and 8x faster, which counts where a blend scores
    hundreds of candidates; anything else (one class, missing values, other labels) goes to it."""
    y = np.asarray(y_true)
    s = np.asarray(score, dtype=float)
    positive = y == 1
    n1 = int(positive.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0 or s.ndim != 1 or not np.isin(y, (0, 1)).all() or not np.isfinite(s).all():
        from sklearn.metrics import roc_auc_score

        return float(roc_auc_score(y_true, score))
    order = np.argsort(s, kind="mergesort")
    ordered = s[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]  # the first of each run of equal scores
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(s)]
    ranks = np.empty(len(s))
    ranks[order] = ((starts + 1 + ends) / 2)[np.cumsum(first) - 1]  # 1-based, ties averaged
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@register_metric("auc", greater_is_better=True, needs="proba")
def auc(y_true: np.ndarray, proba: np.ndarray) -> float:
    if proba.ndim == 2:
        from sklearn.metrics import roc_auc_score

        return roc_auc_score(y_true, proba, multi_class="ovr", labels=np.arange(proba.shape[1]))
    return binary_auc(y_true, proba)


@register_metric("logloss", greater_is_better=False, needs="proba")
def logloss(y_true: np.ndarray, proba: np.ndarray) -> float:
    proba = np.asarray(proba, dtype=float)
    if proba.ndim == 1:
        proba = np.column_stack([1 - proba, proba])
    proba = np.clip(proba, 1e-15, 1 - 1e-15)
    proba = proba / proba.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(proba[np.arange(len(proba)), np.asarray(y_true, dtype=int)])))


@register_metric("rmse", greater_is_better=False, needs="value")
def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y_true, float) - y_pred) ** 2)))


@register_metric("mse", greater_is_better=False, needs="value")
def mse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean((np.asarray(y_true, float) - y_pred) ** 2))


@register_metric("rmsle", greater_is_better=False, needs="value")
def rmsle(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_pred = np.clip(y_pred, 0, None)  # negative counts are clipped, as Kaggle's scorer does
    return float(np.sqrt(np.mean((np.log1p(np.asarray(y_true, float)) - np.log1p(y_pred)) ** 2)))


def log_space(metric: str) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """(to, from) the space where ``metric``'s predictions are averaged and models fit: log1p for
    RMSLE (negative values clipped, as its scorer does), else the values themselves. The one
    place RMSLE's log space is decided."""
    if metric == "rmsle":
        return (lambda a: np.log1p(np.clip(a, 0, None))), np.expm1
    return (lambda a: a), (lambda a: a)


@register_metric("mae", greater_is_better=False, needs="value")
def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y_true, float) - y_pred)))


@register_metric("r2", greater_is_better=True, needs="value")
def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true = np.asarray(y_true, float)
    return float(1 - np.sum((y_true - y_pred) ** 2) / np.sum((y_true - y_true.mean()) ** 2))


@register_metric("f1_macro", greater_is_better=True, needs="label")
def f1_macro(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return f1_score(y_true, y_pred, average="macro")


@register_metric("f1", greater_is_better=True, needs="label")
def f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return f1_score(y_true, y_pred)


@register_metric("qwk", greater_is_better=True, needs="label")
def quadratic_weighted_kappa(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import cohen_kappa_score

    return cohen_kappa_score(np.asarray(y_true, int), np.asarray(y_pred, int), weights="quadratic")


def map_at_k(y_true: np.ndarray, proba: np.ndarray, k: int = 3) -> float:
    """Mean average precision at k with one true label per row (Kaggle's MAP@k)."""
    proba = np.asarray(proba, dtype=float)
    if proba.ndim == 1:
        proba = np.column_stack([1 - proba, proba])
    topk = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    hits = topk == np.asarray(y_true, dtype=int)[:, None]
    ranks = np.argmax(hits, axis=1)
    return float(np.mean(np.where(hits.any(axis=1), 1.0 / (ranks + 1), 0.0)))


for _k in (3, 5):
    register_metric(f"map@{_k}", greater_is_better=True, needs="proba")(
        lambda y, p, _k=_k: map_at_k(y, p, _k))


def per_class(y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> list[dict[str, float | str | int]]:
    """Precision, recall and count of each class, from class indices and a probability matrix
    (the arg-max is the predicted class)."""
    pred = np.asarray(proba).argmax(axis=1)
    y_true = np.asarray(y_true).astype(int)
    out: list[dict[str, float | str | int]] = []
    for k, name in enumerate(classes):
        predicted, actual = pred == k, y_true == k
        hit = int((predicted & actual).sum())
        out.append({"class": name, "n": int(actual.sum()),
                    "precision": hit / int(predicted.sum()) if predicted.any() else float("nan"),
                    "recall": hit / int(actual.sum()) if actual.any() else float("nan")})
    return out


def calibration(y_true: np.ndarray, proba: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Expected calibration error of the top-class confidence (``bins`` equal-width bins, weighted
    by their share of rows), the mean confidence against the accuracy (confidence above accuracy:
    over-confident), and each bin's (confidence, accuracy, count) for a reliability curve."""
    proba = np.asarray(proba, dtype=float)
    conf, hit = proba.max(axis=1), proba.argmax(axis=1) == np.asarray(y_true).astype(int)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    curve, ece = [], 0.0
    for b in range(bins):
        rows = which == b
        if rows.any():
            c, a = float(conf[rows].mean()), float(hit[rows].mean())
            ece += rows.mean() * abs(c - a)
            curve.append((c, a, int(rows.sum())))
    return {"ece": float(ece), "confidence": float(conf.mean()), "accuracy": float(hit.mean()), "curve": curve}
